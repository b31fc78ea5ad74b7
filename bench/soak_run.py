"""One soak run: the local pipeline started with its drill faults, clips fed at an even pace
while the scheduled faults hit it, everything sampled, then drained, judged and torn down."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import soak_aws, soak_broker
from bench.soak_chaos import Chaos
from bench.soak_plan import SoakPlan
from bench.soak_verdict import Observed, Outcome
from bench.soak_watch import Watch
from lava.local_pipeline import LocalPipeline, PipelineConfig, metric
from lava.sample_clips import SampleSpec, make_sample, upload_sample
from lava.status import snapshot
from shared.aws import AwsClients
from shared.bus import Bus
from shared.settings import Settings
from shared.tasks.model import ClipStatus

UPLOAD_ATTEMPTS = 5
UPLOAD_RETRY_SECONDS = 2.0
RSS_JUDGED = ("ingest", "dispatcher", "listener", "postproc", "gt-emulator")


@dataclass
class SoakResult:
    plan: SoakPlan
    observed: Observed
    watch: Watch
    chaos_done: Counter[str]
    journal: list[tuple[float, str]]
    errors: list[str]
    counters: Counter[str]
    throttles: int
    feed_wall: float
    total_wall: float
    loads: list[float]


@dataclass
class SoakRun:
    plan: SoakPlan
    work: Path
    pipeline: LocalPipeline | None = None
    settings: Settings | None = None
    uploaded: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    throttles: dict[tuple[str, int], float] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    watch: Watch = field(default_factory=Watch)
    started: float = field(default_factory=time.monotonic)

    def config(self) -> PipelineConfig:
        plan = self.plan
        return PipelineConfig(
            namespace=f"soak{uuid.uuid4().hex[:6]}",
            run_dir=self.work / "run",
            time_scale=plan.time_scale,
            expire_share=plan.expire_share,
            aws_fault_rate=plan.throttle_rate,
            duplicate_delivery=plan.duplicate_delivery,
            extra_env={
                "LAVA_FAULT__SEED": str(plan.seed),
                # The storm expires 30% of tasks: an object expires k times in a row with
                # probability 0.3^k, and each time its level waits an availability lifetime
                # again. With the defaults (6 re-triggers, 5 expirations) about one clip in a
                # few hundred fails by design (seed 23: 1 of 120, "level 2 not complete after
                # 6 re-triggers"), which would hide what the soak looks for; as the Label
                # Studio end-to-end test does, the limits are raised.
                "LAVA_DISPATCH__LEVEL_MAX_RETRIGGERS": "30",
                "LAVA_DISPATCH__MAX_EXPIRATIONS": "30",
            },
        )

    @property
    def done_clips(self) -> set[str]:
        return {o.clip_id for o in self.outcomes}

    async def run(self) -> SoakResult:
        begun = time.monotonic()
        pipeline = self.pipeline = LocalPipeline(self.config())
        try:
            settings = self.settings = await pipeline.start()
            self.started = time.monotonic()  # the samples' clock: from the first upload
            chaos = Chaos(self.plan, pipeline, settings)
            faults = chaos.tasks()
            watching = asyncio.create_task(self.watch_loop(chaos))
            try:
                feeding = time.monotonic()
                await self.feed(settings)
                feed_wall = time.monotonic() - feeding
                await asyncio.gather(*faults)
                await self.drain()
            finally:
                for task in (*faults, watching):
                    task.cancel()
                await asyncio.gather(*faults, watching, return_exceptions=True)
            return await self.judge(chaos, feed_wall, begun)
        finally:
            await pipeline.stop()

    # --- feeding ----------------------------------------------------------------------------
    async def feed(self, settings: Settings) -> None:
        """Encode and upload the clips at an even pace, through the rig uploader."""
        start = time.monotonic()
        clips_dir = self.work / "clips"
        async with AwsClients(settings) as aws, Bus(settings, client_name="lava-soak-rig") as bus:
            for index in range(self.plan.clips):
                due = start + index * self.plan.upload_interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                spec = SampleSpec(
                    seconds=self.plan.clip_seconds,
                    fps=self.plan.source_fps,
                    width=self.plan.width,
                    height=self.plan.height,
                    gop=self.plan.source_fps,
                    seed=self.plan.seed * 1000 + index,
                )
                clip = await asyncio.to_thread(make_sample, clips_dir, spec, f"soak{index:04d}")
                for attempt in range(UPLOAD_ATTEMPTS):
                    try:
                        payload = await upload_sample(
                            settings,
                            clip,
                            fps=self.plan.fps,
                            workflows=self.plan.workflows_of(index),
                            aws=aws,
                            bus=bus,
                        )
                    except Exception as exc:  # a broker drop mid-publish: upload it again
                        if attempt == UPLOAD_ATTEMPTS - 1:
                            self.errors.append(f"clip {index} not uploaded: {exc}")
                        await asyncio.sleep(UPLOAD_RETRY_SECONDS)
                    else:
                        self.uploaded.append(payload.clip_id)
                        break
                clip.video.unlink(missing_ok=True)

    # --- watching ---------------------------------------------------------------------------
    async def watch_loop(self, chaos: Chaos) -> None:
        count = 0
        while True:
            await self.sample(chaos, with_depths=count % self.plan.depth_every_samples == 0)
            if self.plan.progress_every_samples and count % self.plan.progress_every_samples == 0:
                print(self.progress(chaos), flush=True)
            count += 1
            await asyncio.sleep(self.plan.sample_seconds)

    def progress(self, chaos: Chaos) -> str:
        last = self.watch.samples[-1]
        rss = " ".join(f"{name}={kib / 1024:.0f}" for name, (_, kib) in sorted(last.rss.items()))
        faults = " ".join(f"{k}={v}" for k, v in sorted(chaos.done.items()))
        return (
            f"[soak {last.at / 60:5.1f} min] uploaded {len(self.uploaded)}, with outcome "
            f"{last.clips_done}; {faults}; RSS MiB {rss}; load {self.loads[-1]:.1f}"
        )

    async def sample(self, chaos: Chaos | None, *, with_depths: bool) -> None:
        assert self.pipeline is not None and self.settings is not None
        self.outcomes += await soak_broker.take_outcomes(self.settings)
        if chaos is not None:
            await self.supervise(chaos)
        depths = None
        if with_depths:
            depths = await asyncio.to_thread(soak_broker.queue_depths, self.settings.namespace)
            await asyncio.to_thread(self.read_throttles)
        pids = {name: p.popen.pid for name, p in self.pipeline.processes.items()}
        if self.pipeline.moto is not None and self.pipeline.moto.pid is not None:
            pids["moto"] = self.pipeline.moto.pid
        at = time.monotonic() - self.started
        self.watch.sample(at, len(self.done_clips), pids, depths)
        self.loads.append(os.getloadavg()[0])

    async def supervise(self, chaos: Chaos) -> None:
        """A process that ended without being killed is a finding: note it, start it again."""
        assert self.pipeline is not None
        for service, code in self.pipeline.exited().items():
            if service in chaos.killing:
                continue
            self.unexpected.append(f"{service} (exit {code})")
            try:
                await self.pipeline.restart(service)
            except RuntimeError as exc:
                self.errors.append(f"restarting {service}: {exc}")

    def read_throttles(self) -> None:
        """Injected throttles per process instance (its /metrics; a restart starts at 0)."""
        assert self.pipeline is not None
        for name, process in self.pipeline.processes.items():
            total = sum(
                metric(process.port, "lava_aws_faults_injected", {"aws": aws})
                for aws in ("s3", "sns", "sqs", "dynamodb")
            )
            key = (name, process.popen.pid)
            self.throttles[key] = max(self.throttles.get(key, 0.0), total)

    # --- the end ----------------------------------------------------------------------------
    async def drain(self) -> None:
        """Until every uploaded clip has an outcome, or no new outcome came for the stall
        time, or the drain time is up; then settle."""
        now = time.monotonic()
        deadline, last_progress, done = now + self.plan.drain_seconds, now, len(self.done_clips)
        while set(self.uploaded) - self.done_clips:
            await asyncio.sleep(self.plan.sample_seconds)
            now = time.monotonic()
            if len(self.done_clips) > done:
                last_progress, done = now, len(self.done_clips)
            if now > deadline or now - last_progress > self.plan.stall_seconds:
                break
        await asyncio.sleep(self.plan.settle_seconds)  # late duplicates would arrive here

    async def judge(self, chaos: Chaos, feed_wall: float, begun: float) -> SoakResult:
        assert self.settings is not None
        await self.sample(None, with_depths=True)
        async with AwsClients(self.settings) as aws:
            counters = await soak_aws.emulator_counters(aws, self.settings)
            # dead-letter queues are read as the run's shared user: the operator identity
            # the run acts as may read only the outcomes mailbox
            admin = self.pipeline.admin if self.pipeline is not None else None
            letters = await soak_broker.take_dead_letters(admin or self.settings)
            letters += await soak_aws.take_sqs_dead_letters(aws, self.settings)
            in_flight = await self.in_flight(aws)
        windows, unjudged = self.watch.windows(self.plan.rss_after_clips)
        observed = Observed(
            uploaded=list(self.uploaded),
            outcomes=list(self.outcomes),
            live_duplicates=counters.get("live_duplicates", 0),
            dead_letters=letters,
            poison_injected=chaos.done["poison"],
            rss=[w for w in windows if w.service in RSS_JUDGED],
            unexpected_exits=list(self.unexpected),
            rss_tolerance=self.plan.rss_tolerance,
            rss_unjudged=[s for s in unjudged if s in RSS_JUDGED],
            in_flight=in_flight,
        )
        return SoakResult(
            plan=self.plan,
            observed=observed,
            watch=self.watch,
            chaos_done=chaos.done,
            journal=chaos.journal,
            errors=[*chaos.errors, *self.errors],
            counters=counters,
            throttles=int(sum(self.throttles.values())),
            feed_wall=feed_wall,
            total_wall=time.monotonic() - begun,
            loads=self.loads,
        )

    async def in_flight(self, aws: AwsClients) -> list[str]:
        """Clips without an outcome the pipeline still works on: its clip record says
        labeling, or it has no record yet while the consumer queues still hold events."""
        assert self.settings is not None
        snap = await snapshot(aws, self.settings)
        queued = sum(
            ready + unacked
            for queue, (ready, unacked) in self.watch.last_depths().items()
            if not queue.endswith((".dead", ".outcomes"))
        )
        busy = []
        for clip_id in set(self.uploaded) - self.done_clips:
            record = snap.clips.get(clip_id)
            if (record is None and queued) or (record and record.status is ClipStatus.LABELING):
                busy.append(clip_id)
        return sorted(busy)


async def soak(plan: SoakPlan, work: Path) -> SoakResult:
    """Run the soak in ``work`` (its logs and clips); the pipeline is torn down after."""
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    return await SoakRun(plan, work).run()
