"""The dedup-key and resend policy as pure decisions: no store, no broker, no clock.

Each scenario is a row of the table in ``services/dispatcher/policy.py``; the same scenarios
run through the real handlers on moto + RabbitMQ in ``tests/test_dispatcher.py`` and friends.
``committed`` applies a plan's writes to the aggregate in memory (what the store would hold
after the commit and the confirmation), so scenarios chain without any I/O. A redelivered
event is the same event decided again over what its first delivery committed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.testing.events import completed, frames_ready
from services.dispatcher.plan import Plan
from services.dispatcher.policy import (
    Abort,
    LabelingFailed,
    Output,
    Returned,
    Rules,
    Start,
    Sweep,
    TaskAggregate,
    decide,
)
from shared.events import ClipFailed, LabelsFinalized
from shared.labeling.streaming_job import StreamingJob
from shared.quality.gold_ref import GoldRef
from shared.tasks.model import DataObject, ObjectStatus, TaskStatus
from shared.tasks.plan import NEW, PutLate, PutObject, PutTask

DAY = 24 * 3600.0
T0 = 1_000_000.0
RULES = Rules(
    resend_interval=5 * DAY,
    level_timeout=7 * DAY,
    level_max_retriggers=2,
    max_expirations=2,
    job_recheck=60.0,
    send_lease=120.0,
)
LEVELS = {
    "vehicles": [["VOTVehicle"], ["AdjVOTVehicle"]],
    "signs_lights": [["VODTrafficLight", "VODTrafficSign"], ["AdjVODTrafficLight"]],
}


def job(name: str, **changes: Any) -> StreamingJob:
    adjusts = name.removeprefix("Adj") if name.startswith("Adj") else None
    base: dict[str, Any] = {
        "name": name,
        "gt_name": f"t-{name}",
        "arn": f"arn:{name}",
        "job_type": name.lower(),
        "task_type": "VideoObjectTracking",
        "label_attribute": f"{name}-ref",
        "adjusts": adjusts,
        "input_topic_arn": f"in-{name}",
        "output_topic_arn": f"out-{name}",
        "label_config_uri": "s3://b/labels.json",
        "backend": "emulator",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "task_availability_seconds": 3600,
        "task_time_limit_seconds": 3600,
        "max_concurrent_tasks": 10,
    }
    return StreamingJob(**{**base, **changes})


def jobs_of(workflow: str, **changes: Any) -> dict[str, StreamingJob]:
    return {n: job(n, **changes) for level in LEVELS[workflow] for n in level}


def empty(workflow: str = "vehicles", **job_changes: Any) -> TaskAggregate:
    return TaskAggregate(None, (), RULES, jobs_of(workflow, **job_changes))


def start(workflow: str = "vehicles") -> Start:
    return Start(frames_ready(workflow=workflow).payload, LEVELS[workflow])


def committed(agg: TaskAggregate, plan: Plan, confirmed: bool = True) -> TaskAggregate:
    """The aggregate as the store holds it after ``plan``'s commit (and confirmation)."""
    task, objects = agg.task, {(o.level, o.job): o for o in agg.objects}
    writes = plan.commit.writes + (plan.confirm.writes if confirmed else ())
    for write in writes:
        if isinstance(write, PutTask):
            task = write.task
        elif isinstance(write, PutObject):
            objects[(write.obj.level, write.obj.job)] = write.obj
    return TaskAggregate(task, tuple(objects.values()), agg.rules, agg.jobs)


def running(workflow: str = "vehicles") -> TaskAggregate:
    agg = empty(workflow)
    return committed(agg, decide(agg, start(workflow), T0))


def only(agg: TaskAggregate, job_name: str) -> DataObject:
    (obj,) = [o for o in agg.objects if o.job == job_name]
    return obj


def output(agg: TaskAggregate, job_name: str, key: str | None = None) -> Output:
    obj = only(agg, job_name)
    assert agg.task is not None
    return Output(completed(agg.task.task_id, agg.jobs[job_name], key or obj.key).payload)


def returned(agg: TaskAggregate, job_name: str, key: str | None = None) -> Returned:
    obj = only(agg, job_name)
    return Returned(
        job_name, obj.object_id, key or obj.key, "ClientError: Annotation tasks expired"
    )


# --- Start --------------------------------------------------------------------------------------
def test_start_creates_the_task_and_sends_each_level_one_job_once() -> None:
    plan = decide(empty("signs_lights"), start("signs_lights"), T0)
    puts = plan.commit.writes
    assert [type(w) for w in puts] == [PutTask, PutObject, PutObject]
    assert all(w.expected == NEW for w in puts if isinstance(w, PutTask | PutObject))
    assert [d.job.name for d in plan.sends] == ["VODTrafficLight", "VODTrafficSign"]
    # committed due for the same-key re-send: nothing to confirm after the send
    assert all(
        d.obj.send_count == 1 and d.obj.due_at == T0 + RULES.resend_interval for d in plan.sends
    )
    assert plan.commit.counts == {"t_active_1": 1, "objects": 2, "o_waiting": 2, "sends": 2}
    assert plan.commit.link is not None and plan.commit.link.clip_id == "clip-1"
    assert not plan.confirm and plan.events == ()


def test_a_redelivered_start_sends_level_one_again_under_its_keys_writing_nothing() -> None:
    agg = running("signs_lights")  # committed; whether the sends went out is unknown
    plan = decide(agg, start("signs_lights"), T0 + 1)
    assert not plan.commit and not plan.confirm
    assert [(d.obj.key, d.obj.send_count) for d in plan.sends] == [
        (o.key, 1) for o in sorted(agg.objects, key=lambda o: o.job)
    ]


def test_a_redelivered_start_sends_the_current_level_again() -> None:
    agg = running()
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    plan = decide(agg, start(), T0 + 20)
    assert not plan.commit
    assert [(d.obj.job, d.obj.key) for d in plan.sends] == [
        ("AdjVOTVehicle", only(agg, "AdjVOTVehicle").key)
    ]


def test_a_redelivered_start_leaves_a_held_send_held() -> None:
    agg = empty(status="Initializing")
    agg = committed(agg, decide(agg, start(), T0))
    assert decide(agg, start(), T0 + 1).empty


def test_an_unknown_workflow_creates_the_task_failed() -> None:
    event = Start(frames_ready(workflow="vehicles").payload, [], "unknown workflow 'bicycles'")
    plan = decide(empty(), event, T0)
    (put,) = [w for w in plan.commit.writes if isinstance(w, PutTask)]
    assert put.task.status is TaskStatus.FAILED and plan.sends == ()
    (failed,) = plan.events
    assert isinstance(failed.payload, ClipFailed) and failed.payload.stage == "dispatch"


def test_a_job_not_in_progress_holds_the_send() -> None:
    agg = empty(status="Initializing")
    plan = decide(agg, start(), T0)
    assert plan.sends == ()
    (obj,) = [w.obj for w in plan.commit.writes if isinstance(w, PutObject)]
    assert obj.held is not None and "Initializing" in obj.held
    assert obj.due_at == T0 + RULES.job_recheck and obj.send_count == 0


# --- Output -------------------------------------------------------------------------------------
def test_an_output_completes_the_level_and_starts_the_next_with_the_carry() -> None:
    agg = running()
    plan = decide(agg, output(agg, "VOTVehicle"), T0 + 10)
    (sent,) = plan.sends
    assert sent.job.name == "AdjVOTVehicle" and sent.obj.level == 2
    assert sent.carry is not None and "VOTVehicle-ref" in sent.carry
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.level == 2 and task.history[-1].event == "level-started"
    assert plan.commit.counts["t_active_1"] == -1 and plan.commit.counts["t_active_2"] == 1


def test_one_output_of_two_jobs_does_not_complete_the_level() -> None:
    agg = running("signs_lights")
    plan = decide(agg, output(agg, "VODTrafficLight"), T0 + 10)
    assert plan.sends == () and [type(w) for w in plan.commit.writes] == [PutTask, PutObject]
    # the task's revision moves too: a sibling output decided at once loses its commit
    (touched,) = [w for w in plan.commit.writes if isinstance(w, PutTask)]
    assert agg.task is not None and touched.expected == agg.task.rev
    agg = committed(agg, plan)
    plan = decide(agg, output(agg, "VODTrafficSign"), T0 + 11)
    assert [d.job.name for d in plan.sends] == ["AdjVODTrafficLight"]


def test_a_repeated_output_sends_the_next_level_again_writing_nothing() -> None:
    agg = running()
    event = output(agg, "VOTVehicle")
    agg = committed(agg, decide(agg, event, T0 + 10))
    plan = decide(agg, event, T0 + 20)
    assert not plan.commit and not plan.confirm and plan.events == ()
    (again,) = plan.sends
    assert again.obj.key == only(agg, "AdjVOTVehicle").key and again.obj.send_count == 1
    assert again.carry is not None and "VOTVehicle-ref" in again.carry


def test_a_repeated_output_of_a_level_still_waiting_does_nothing() -> None:
    agg = running("signs_lights")
    event = output(agg, "VODTrafficLight")
    agg = committed(agg, decide(agg, event, T0 + 10))
    assert decide(agg, event, T0 + 20).empty


def test_an_unknown_object_or_key_is_rejected() -> None:
    agg = running()
    forged = output(agg, "VOTVehicle", key="forged/1-abcd/x/0")
    assert "never sent" in (decide(agg, forged, T0).reject or "")
    ghost = Returned("VOTPedestrian", "0", "k", "expired")
    assert "no data object" in (decide(agg, ghost, T0).reject or "")


def test_the_last_output_finalizes() -> None:
    agg = running()
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    plan = decide(agg, output(agg, "AdjVOTVehicle"), T0 + 20)
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    # due at the re-send interval until its clip completes (ClipCompleted clears it)
    assert task.status is TaskStatus.FINALIZED and task.due_at == T0 + 20 + RULES.resend_interval
    assert [h.event for h in task.history[-2:]] == ["levels-done", "labels-finalized"]
    assert plan.commit.counts["t_active_2"] == -1 and plan.commit.counts["t_finalized_2"] == 1
    assert "t_finalizing_2" not in plan.commit.counts and not plan.confirm
    (final,) = plan.events
    assert isinstance(final.payload, LabelsFinalized) and len(final.payload.outputs) == 2


def test_a_finalized_task_whose_clip_never_completed_is_published_again_by_the_sweep() -> None:
    """Its event's every delivery failed to publish (or a replica without this rule took the
    redelivery): LabelsFinalized is not lost, the sweep publishes it at the re-send interval."""
    agg = running()
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    first = decide(agg, output(agg, "AdjVOTVehicle"), T0 + 20)
    agg = committed(agg, first)
    assert decide(agg, Sweep(), T0 + 20 + RULES.resend_interval - 1).empty
    plan = decide(agg, Sweep(), T0 + 20 + RULES.resend_interval)
    assert [e.event_id for e in plan.events] == [e.event_id for e in first.events]
    assert not plan.commit and plan.sends == ()
    (confirm,) = plan.confirm.writes
    assert isinstance(confirm, PutTask) and confirm.task.status is TaskStatus.FINALIZED
    assert confirm.task.due_at == T0 + 20 + 2 * RULES.resend_interval


def test_a_finalized_gold_copy_is_never_due() -> None:
    """No ClipCompleted follows a gold copy, so nothing would clear a due time: none."""
    gold = GoldRef(
        clip_id="gold-1", truth_uri="s3://lava-data/labels/gold-1.json", truth_kind="labels"
    )
    frames = frames_ready().payload.model_copy(update={"gold": gold})
    agg = empty()
    agg = committed(agg, decide(agg, Start(frames, LEVELS["vehicles"]), T0))
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    plan = decide(agg, output(agg, "AdjVOTVehicle"), T0 + 20)
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.status is TaskStatus.FINALIZED and task.gold == gold and task.due_at is None


def test_a_repeated_last_output_publishes_labels_finalized_again_under_its_id() -> None:
    agg = running()
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    last = output(agg, "AdjVOTVehicle")
    first = decide(agg, last, T0 + 20)
    plan = decide(committed(agg, first), last, T0 + 30)
    assert not plan.commit and plan.sends == ()
    assert [e.event_id for e in plan.events] == [e.event_id for e in first.events]
    assert plan.events[0].payload == first.events[0].payload


def test_an_output_for_a_stopped_task_is_kept_aside() -> None:
    agg = running()
    assert agg.task is not None
    stopped = TaskAggregate(
        agg.task.model_copy(update={"status": TaskStatus.STOPPED}), agg.objects, RULES, agg.jobs
    )
    plan = decide(stopped, output(stopped, "VOTVehicle"), T0 + 10)
    (late,) = plan.commit.writes
    assert isinstance(late, PutLate) and late.late.what == "output"
    assert plan.sends == () and plan.events == ()


# --- Returned / LabelingFailed ------------------------------------------------------------------
def test_an_expiry_rekeys_exactly_once() -> None:
    agg = running()
    old = only(agg, "VOTVehicle").key
    plan = decide(agg, returned(agg, "VOTVehicle"), T0 + 10)
    (sent,) = plan.sends
    assert sent.obj.key != old and sent.obj.attempt == 2 and sent.obj.expired_keys == [old]
    assert plan.commit.counts["rekeys"] == 1 and plan.commit.counts["expirations"] == 1
    agg = committed(agg, plan)
    # the same return again: no second new key, its new key sent again (writing nothing)
    again = decide(agg, returned(agg, "VOTVehicle", key=old), T0 + 20)
    assert not again.commit and [d.obj.key for d in again.sends] == [sent.obj.key]
    older = committed(agg, decide(agg, returned(agg, "VOTVehicle"), T0 + 30))
    assert decide(older, returned(older, "VOTVehicle", key=old), T0 + 40).empty  # stale


def test_too_many_expiries_fail_the_task() -> None:
    agg = running()
    for i in range(RULES.max_expirations):
        agg = committed(agg, decide(agg, returned(agg, "VOTVehicle"), T0 + i))
    plan = decide(agg, returned(agg, "VOTVehicle"), T0 + 10)
    assert plan.sends == ()
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.status is TaskStatus.FAILED and "expired 3 times" in (task.failure_reason or "")
    (failed,) = plan.events
    assert isinstance(failed.payload, ClipFailed) and failed.payload.stage == "labeling"


def test_a_failure_resending_cannot_fix_fails_the_task() -> None:
    agg = running()
    obj = only(agg, "VOTVehicle")
    plan = decide(agg, LabelingFailed("VOTVehicle", "0", obj.key, "ClientError: bad"), T0)
    objects = [w.obj for w in plan.commit.writes if isinstance(w, PutObject)]
    assert [o.status for o in objects] == [ObjectStatus.FAILED]
    assert isinstance(plan.events[0].payload, ClipFailed)


def test_an_abort_fails_the_task_with_the_reason() -> None:
    agg = running()
    plan = decide(agg, Abort("clip-1", "clip-1.vehicles", "SNS PublishBatch failed (x)"), T0)
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.failure_reason == "SNS PublishBatch failed (x)"


# --- the sweep ----------------------------------------------------------------------------------
def test_the_sweep_resends_with_the_same_key_when_due() -> None:
    agg = running()
    assert decide(agg, Sweep(), T0 + 4 * DAY).empty
    plan = decide(agg, Sweep(), T0 + 5 * DAY)
    (sent,) = plan.sends
    assert sent.obj.key == only(agg, "VOTVehicle").key and sent.obj.send_count == 2
    # no event comes back for a sweep: claimed for the short lease, confirmed after the send
    assert sent.obj.due_at == T0 + 5 * DAY + RULES.send_lease
    (confirm,) = plan.confirm.writes
    assert isinstance(confirm, PutObject) and confirm.obj.due_at == T0 + 10 * DAY


def test_an_overdue_level_is_retriggered_with_the_same_keys_then_fails() -> None:
    agg = running()
    key = only(agg, "VOTVehicle").key
    now = T0
    for retrigger in (1, 2):
        now += RULES.level_timeout
        plan = decide(agg, Sweep(), now)
        assert plan.outcome == "retriggered" and [d.obj.key for d in plan.sends] == [key]
        agg = committed(agg, plan)
        assert agg.task is not None and agg.task.level_retriggers == retrigger
    plan = decide(agg, Sweep(), now + RULES.level_timeout)
    assert plan.outcome == "failed" and "not complete after 2 re-triggers" in str(plan.events)


def test_an_overdue_level_whose_sends_are_held_is_postponed() -> None:
    agg = empty(status="Stopped")
    agg = committed(agg, decide(agg, start(), T0))
    agg = TaskAggregate(agg.task, agg.objects, RULES, jobs_of("vehicles", status="Stopped"))
    plan = decide(agg, Sweep(), T0 + RULES.level_timeout)
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.level_retriggers == 0 and task.due_at == T0 + 2 * RULES.level_timeout


def test_a_recreated_job_gets_a_new_key_a_held_one_none() -> None:
    agg = running()
    old = only(agg, "VOTVehicle").key
    renewed = TaskAggregate(agg.task, agg.objects, RULES, jobs_of("vehicles", generation=2))
    (sent,) = decide(renewed, Sweep(), T0 + 5 * DAY).sends
    assert sent.obj.key != old and sent.obj.attempt == 2 and sent.obj.generation == 2
    stopped = TaskAggregate(agg.task, agg.objects, RULES, jobs_of("vehicles", status="Stopped"))
    assert decide(stopped, Sweep(), T0 + 5 * DAY).sends == ()


def test_the_sweep_stops_what_waits_for_a_stopped_task() -> None:
    agg = running()
    assert agg.task is not None
    task = agg.task.model_copy(update={"status": TaskStatus.STOPPED})
    plan = decide(TaskAggregate(task, agg.objects, RULES, agg.jobs), Sweep(), T0)
    (obj,) = [w.obj for w in plan.commit.writes if isinstance(w, PutObject)]
    assert obj.status is ObjectStatus.STOPPED and plan.sends == ()


@pytest.mark.parametrize("confirmed", [False, True])
def test_a_task_the_sweep_finalizes_publishes_again_only_if_unconfirmed(confirmed: bool) -> None:
    agg = running()
    agg = committed(agg, decide(agg, output(agg, "VOTVehicle"), T0 + 10))
    assert agg.task is not None
    # its last output recorded by an older version that never moved the task on
    adj = only(agg, "AdjVOTVehicle").model_copy(update={"status": ObjectStatus.DONE})
    objects = tuple(adj if o.job == adj.job else o for o in agg.objects)
    agg = TaskAggregate(agg.task, objects, RULES, agg.jobs)
    now = T0 + 10 + RULES.level_timeout
    plan = decide(agg, Sweep(), now)
    (task,) = [w.task for w in plan.commit.writes if isinstance(w, PutTask)]
    assert task.status is TaskStatus.FINALIZING and task.due_at == now + RULES.send_lease
    (confirm,) = plan.confirm.writes
    assert isinstance(confirm, PutTask) and confirm.task.status is TaskStatus.FINALIZED
    agg = committed(agg, plan, confirmed=confirmed)
    again = decide(agg, Sweep(), now + RULES.send_lease)
    assert bool(again.events) is not confirmed


def test_decide_is_pure() -> None:
    agg = running("signs_lights")
    event = output(agg, "VODTrafficLight")
    assert decide(agg, event, T0 + 5) == decide(agg, event, T0 + 5)
