"""The soak's scheduled faults: SIGKILLs with restarts, broker connection drops, streaming jobs
stopped and re-created, and poison on the bus and on an output topic.

Throttling, duplicate delivery and the expiry storm are the pipeline's own drill settings
(:class:`~lava.local_pipeline.PipelineConfig`); this module adds what happens at moments.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aio_pika

from bench import soak_aws, soak_broker
from bench.soak_plan import JobRecycle, SoakPlan
from bench.soak_verdict import POISON_MARKER
from lava.local_pipeline import LocalPipeline
from shared.aws import AwsClients
from shared.settings import Settings

KILLED_SERVICES = ("ingest", "dispatcher", "listener", "postproc")


@dataclass
class Chaos:
    plan: SoakPlan
    pipeline: LocalPipeline
    settings: Settings
    started: float = field(default_factory=time.monotonic)
    done: Counter[str] = field(default_factory=Counter)  # what was injected, by kind
    journal: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    killing: set[str] = field(default_factory=set)  # down on purpose right now

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)

    def note(self, kind: str, what: str) -> None:
        self.done[kind] += 1
        self.journal.append((round(time.monotonic() - self.started, 1), what))

    async def until(self, share: float) -> None:
        """Sleep until ``share`` of the feed time has passed."""
        due = self.started + share * self.plan.feed_seconds
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    def elapsed_share(self) -> float:
        return (time.monotonic() - self.started) / self.plan.feed_seconds

    def tasks(self) -> list[asyncio.Task[None]]:
        jobs = [self.kills(), self.drops(), self.poison()]
        jobs += [self.recycle(r) for r in self.plan.recycles]
        return [asyncio.create_task(self._guarded(job)) for job in jobs]

    async def _guarded(self, job: object) -> None:
        try:
            await job  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fault that could not be injected is reported, not fatal
            self.errors.append(f"{type(exc).__name__}: {exc}")

    # --- the faults -------------------------------------------------------------------------
    async def kills(self) -> None:
        order: list[str] = []
        while True:
            await asyncio.sleep(self.plan.kill_every_seconds * self.rng.uniform(0.6, 1.4))
            # At least one kill, however late: on a loaded machine the soak's own loop may
            # wake after the window has closed (a short run at load 11 ended with none).
            if self.elapsed_share() >= self.plan.kill_until and self.done["kills"]:
                return
            if not order:
                order = list(KILLED_SERVICES)
                self.rng.shuffle(order)
            await self.kill_and_restart(order.pop())

    async def kill_and_restart(self, service: str) -> None:
        self.killing.add(service)
        try:
            await asyncio.to_thread(self.pipeline.kill, service)
            self.note("kills", f"SIGKILL {service}")
            await asyncio.sleep(self.rng.uniform(0.0, self.plan.restart_after_max_seconds))
            try:
                await self.pipeline.restart(service)
            except RuntimeError as exc:  # slow to get ready on a loaded machine: keep going
                self.errors.append(f"restarting {service}: {exc}")
            else:
                self.note("restarts", f"{service} restarted")
        finally:
            self.killing.discard(service)

    async def drops(self) -> None:
        while True:
            await asyncio.sleep(self.plan.drop_every_seconds * self.rng.uniform(0.6, 1.4))
            if self.elapsed_share() >= 1.0 and self.done["broker_drops"]:  # one at least
                return
            ns = self.settings.namespace
            closed = await asyncio.to_thread(soak_broker.drop_connections, ns, "lava soak")
            self.note("broker_drops", f"closed {closed} broker connections")

    async def recycle(self, recycle: JobRecycle) -> None:
        await self.until(recycle.at)
        async with AwsClients(self.settings) as aws:
            await soak_aws.stop_job(aws, self.settings, recycle.job)
            self.note("jobs_stopped", f"stopped {recycle.job}")
            await asyncio.sleep(self.plan.recycle_hold_seconds)
            generation = await soak_aws.recreate_job(aws, self.settings, recycle.job)
            self.note("jobs_recreated", f"re-created {recycle.job} (generation {generation})")

    async def poison(self) -> None:
        """One malformed ClipIngested on the bus, one garbage message on an output topic."""
        await self.until(self.plan.poison_at)
        body = json.dumps({"type": "ClipIngested", "version": 1, "note": f"{POISON_MARKER} bus"})
        connection = await aio_pika.connect(
            self.settings.broker.amqp_url.get_secret_value(),
            client_properties={"connection_name": f"lava-soak-poisoner:{self.settings.namespace}"},
        )
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.settings.names.exchange)
            await exchange.publish(aio_pika.Message(body.encode()), routing_key="ClipIngested")
        finally:
            await connection.close()
        self.note("poison", "malformed ClipIngested published")
        async with AwsClients(self.settings) as aws:
            await soak_aws.poison_output_topic(aws, self.settings, "VOTLane", "output topic")
        self.note("poison", "garbage published on VOTLane's output topic")
