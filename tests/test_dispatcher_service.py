"""The dispatcher as a service on the real broker: replicas, and the emulator's retention."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devstack.testing.events import completed, frames_ready
from emulators.settings import LocalSettings
from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.service import make_dispatcher
from shared.aws import AwsClients
from shared.bus import Bus
from shared.clock import FakeClock
from shared.events import FramesReady, LevelCompleted
from shared.labeling.jobs import JobRegistry
from shared.runtime import ServiceRuntime
from tests.support.broker import wait_until
from tests.support.dispatch import DAY, Recorder, create_jobs, dispatch_settings, inputs, make
from tests.support.gt import emulator, emulator_settings, output_queue, receive, staged_clip

pytestmark = pytest.mark.integration


async def test_two_replicas_make_each_key_once_and_redeliveries_send_it_again(
    aws: AwsClients, settings: LocalSettings, bus: Bus
) -> None:
    s = dispatch_settings(settings, broker__prefetch=4)
    jobs = await create_jobs(aws, s)
    clock = FakeClock()
    replicas: list[Dispatcher] = []
    runtimes = [ServiceRuntime("dispatcher", s, consumer="dispatcher") for _ in range(2)]
    for runtime in runtimes:
        dispatcher = make_dispatcher(runtime, clock)
        replicas.append(dispatcher)
        runtime.handle(FramesReady, dispatcher.on_frames_ready)
        runtime.handle(LevelCompleted, dispatcher.on_level_completed)

    def count(name: str) -> int:
        return sum(d.counters.counts.get(name, 0) for d in replicas)

    async def taken(job: str, n: int) -> Counter[str]:
        """The keys of the first ``n`` input messages to reach ``job``'s queue (a counter
        moves at the commit, before its send: the messages themselves are waited for)."""
        got: list[dict[str, Any]] = []

        async def enough() -> bool:
            got.extend(await inputs(aws, jobs[job]))
            return len(got) >= n

        await wait_until(enough, timeout=20)
        return Counter(m["lava-dedup-id"] for m in got)

    tasks = [asyncio.create_task(r.run(install_signals=False)) for r in runtimes]
    try:
        await wait_until(lambda: all(r.ready for r in runtimes), timeout=15)
        events = [frames_ready(f"clip-{i}", bucket=s.names.bucket) for i in range(6)]
        for event in events * 2:  # every event delivered twice
            await bus.publish(event)
        # each task created and sent by one replica; each second delivery, whichever replica
        # took it, found the task made and sent its key again (Ground Truth labels a key once)
        keys = await taken("VOTVehicle", 12)
        assert len(keys) == 6 and set(keys.values()) == {2}
        assert count("sends") == count("redelivery_sends") == 6
        # both replicas sweep at once: each due re-send happens once
        await clock.advance(5 * DAY + 1)
        reports = await asyncio.gather(*(d.sweep() for d in replicas))
        assert sum(r.resent for r in reports) == 6
        resent = Counter(m["lava-dedup-id"] for m in await inputs(aws, jobs["VOTVehicle"]))
        assert set(resent) == set(keys) and set(resent.values()) == {1}
        for key in keys:
            done = completed(key.split("/")[0], jobs["VOTVehicle"], key, s.names.bucket)
            await bus.publish(done)
            await bus.publish(done)
        level2 = await taken("AdjVOTVehicle", 12)
        assert len(level2) == 6 and set(level2.values()) == {2}
        assert count("levels_advanced") == 6 and count("redelivery_sends") == 12
    finally:
        for runtime in runtimes:
            runtime.request_stop()
        await asyncio.gather(*tasks)


async def test_a_retention_drop_is_rescued_by_the_same_key(
    aws: AwsClients, settings: LocalSettings, tmp_path: Path
) -> None:
    base = dispatch_settings(settings.replace(labeling__max_concurrent_tasks=1))
    s = emulator_settings(
        base,
        # 14-day retention -> 3 s; a worker takes 6 s, so with one task open at a time the
        # second object waits past the retention and is dropped
        emulator__time_scale=3.0 / (14 * DAY),
        emulator__latency_min_seconds=6.0,
        emulator__latency_max_seconds=6.0,
    )
    s = s.replace(labeling__task_availability_seconds=30 * DAY)
    jobs = await create_jobs(aws, s)
    job = jobs["VOTVehicle"]
    out = await output_queue(aws, job, f"{s.namespace}-out")
    clock = FakeClock()
    dispatcher = make(aws, s, clock, Recorder())
    sources = []
    for i in range(2):
        source, _ = await staged_clip(aws, s, tmp_path, f"keep-{i}")
        sources.append(source)
    registry = JobRegistry(aws, s)

    async def counters() -> dict[str, int]:
        found = await registry.get(job.name)
        return dict(found.counters) if found else {}

    async with emulator(s, aws) as emu:
        # Send once the job is watched: the scaled retention runs from the send.
        await wait_until(lambda: emu.simulating(job.name), timeout=30)
        for i in range(2):
            ready = frames_ready(f"keep-{i}", bucket=s.names.bucket)
            frames = ready.payload.frames.model_copy(update={"sequence_uri": sources[i]})
            payload = ready.payload.model_copy(update={"frames": frames})
            await dispatcher.on_frames_ready(ready.model_copy(update={"payload": payload}))
        first = await receive(aws, out, 1, timeout=30)
        assert [o["lava-dedup-id"].split("/")[0] for o in first] == ["keep-0.vehicles"]

        async def dropped() -> bool:
            return (await counters()).get("dropped_by_retention", 0) == 1

        await wait_until(dropped, timeout=30)
        await clock.advance(5 * DAY + 1)  # the periodic same-key re-send
        report = await dispatcher.sweep()
        assert report.resent == 2
        rescued = await receive(aws, out, 1, timeout=30)
    assert [o["lava-dedup-id"].split("/")[0] for o in rescued] == ["keep-1.vehicles"]
    objects = await dispatcher.store.objects("keep-1.vehicles")
    assert rescued[0]["lava-dedup-id"] == objects[0].key and objects[0].attempt == 1
    final = await counters()
    assert final["dropped_by_retention"] == 1
    assert final["duplicates_ignored"] == 1  # keep-0's re-send: a no-op for Ground Truth
    assert final["labeled"] == 2
