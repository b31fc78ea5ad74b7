"""Counters per status and stage: kept on every transition, idempotent under redelivery, equal
to what a full recount of the table finds; and the status read built on them."""

from __future__ import annotations

import pytest

from devstack.testing.events import completed, expired, frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.operations.status import pipeline_status
from shared.operations.tasks import retry_task, stop_task
from shared.settings import Settings
from tests.support.dispatch import DAY, Recorder, create_jobs, dispatch_settings, inputs, make

pytestmark = pytest.mark.integration


async def test_counters_follow_every_transition_and_match_a_recount(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings, dispatch__max_expirations=1)
    jobs = await create_jobs(aws, s)
    clock = FakeClock()
    dispatcher = make(aws, s, clock, Recorder())
    store = dispatcher.store
    vehicle, adjust = jobs["VOTVehicle"], jobs["AdjVOTVehicle"]
    for clip in ("c1", "c2", "c3", "c4"):
        event = frames_ready(clip, bucket=s.names.bucket)
        await dispatcher.on_frames_ready(event)
        await dispatcher.on_frames_ready(event)  # redelivered: counts nothing
    keys = {
        m["lava-dedup-id"].split("/")[0]: m["lava-dedup-id"] for m in await inputs(aws, vehicle)
    }
    # c1 goes through both levels (every event twice)
    for _ in range(2):
        await dispatcher.on_level_completed(completed("c1.vehicles", vehicle, keys["c1.vehicles"]))
    # the repeat sent level 2's key again: one key
    (adj_key,) = {m["lava-dedup-id"] for m in await inputs(aws, adjust)}
    for _ in range(2):
        await dispatcher.on_level_completed(completed("c1.vehicles", adjust, adj_key))
    # c2 expires once (re-keyed), then again (fails); then it is retried
    for _ in range(2):
        await dispatcher.on_task_expired(expired("c2.vehicles", vehicle, keys["c2.vehicles"]))
    (rekeyed,) = {m["lava-dedup-id"] for m in await inputs(aws, vehicle)}  # one new key
    await dispatcher.on_task_expired(expired("c2.vehicles", vehicle, rekeyed))
    now = clock.now().timestamp()
    await retry_task(store, "c2.vehicles", now, DAY)
    # c3 is stopped (twice); c4 waits and gets a same-key re-send
    await stop_task(store, "c3.vehicles", now, by="op")
    await stop_task(store, "c3.vehicles", now, by="op")
    await clock.advance(5 * DAY + 1)
    await dispatcher.sweep()

    status = await pipeline_status(store, clock.now().timestamp(), 5 * DAY, hours=24 * 6)
    kept = await store.counters.totals()
    recounted = await store.counters.recount()
    assert {k: v for k, v in kept.items() if v} == {k: v for k, v in recounted.items() if v}

    assert status.tasks == 4
    assert status.tasks_by_status == {
        "finalized": {"2": 1},
        "active": {"1": 2, "2": 0},  # level 2 was passed through
        "stopped": {"1": 1},
    }
    funnel = {stage.stage: stage.tasks for stage in status.funnel}
    assert funnel == {
        "ingested": 4,
        "level 1": 2,
        "level 2": 0,
        "post-processing": 1,
        "completed": 0,
        "failed": 0,
        "stopped": 1,
    }
    assert status.clips_by_outcome == {"labeling": 3, "stopped": 1}
    assert (status.expirations, status.rekeys, status.outputs) == (2, 2, 2)
    assert status.waiting == 2 and sum(status.waiting_by_age.values()) == 2
    assert status.resends >= 1
    assert sum(h.outputs for h in status.hours) == 2


async def test_waiting_objects_by_age_since_their_last_send(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    clock = FakeClock()
    dispatcher = make(aws, s, clock, Recorder())
    await dispatcher.on_frames_ready(frames_ready("old", bucket=s.names.bucket))
    await clock.advance(2 * 3600)
    await dispatcher.on_frames_ready(frames_ready("new", bucket=s.names.bucket))
    await clock.advance(30)
    status = await pipeline_status(dispatcher.store, clock.now().timestamp(), 5 * DAY)
    assert status.waiting_by_age["< 1 min"] == 1
    assert status.waiting_by_age["1-24 h"] == 1
    assert status.failures == []
