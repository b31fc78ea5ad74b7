"""The soak's bounds (pure), and its whole machinery on a few clips (bench/soak.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.soak_plan import JobRecycle, SoakPlan
from bench.soak_run import soak
from bench.soak_verdict import (
    POISON_MARKER,
    DeadLetter,
    Observed,
    Outcome,
    RssWindow,
    broken_bounds,
)
from bench.soak_watch import Watch


def observed(**changes: object) -> Observed:
    held = Observed(
        uploaded=["a", "b"],
        outcomes=[Outcome("a", "ClipCompleted", "e1"), Outcome("b", "ClipCompleted", "e2")],
        live_duplicates=0,
        dead_letters=[DeadLetter("ns.ingest.dead", "invalid event", f"{POISON_MARKER} bus")],
        poison_injected=1,
        rss=[RssWindow("ingest", 10, 100, 100_000, 105_000)],
    )
    return replace(held, **changes)  # type: ignore[arg-type]


def test_a_run_that_held_breaks_no_bound() -> None:
    assert broken_bounds(observed()) == []


def test_a_redelivered_outcome_is_one_outcome_but_a_second_event_is_two() -> None:
    again = Outcome("a", "ClipCompleted", "e1")
    assert broken_bounds(observed(outcomes=[*observed().outcomes, again])) == []
    second = Outcome("a", "ClipFailed", "e3", "dispatch: gave up")
    problems = broken_bounds(observed(outcomes=[*observed().outcomes, second]))
    assert any("more than one outcome: a" in p for p in problems)


def test_a_clip_without_outcome_is_lost() -> None:
    problems = broken_bounds(observed(uploaded=["a", "b", "c"]))
    assert problems == ["1 clips lost (no outcome): c"]


def test_a_clip_still_in_flight_is_not_lost_but_the_run_did_not_finish_it() -> None:
    problems = broken_bounds(observed(uploaded=["a", "b", "c"], in_flight=["c"]))
    assert len(problems) == 1 and problems[0].startswith("1 clips still in flight")


def test_dead_letters_must_be_the_injected_poison_with_a_reason() -> None:
    stranger = DeadLetter("ns.dispatcher.dead", "delivery_limit", '{"type": "LevelCompleted"}')
    no_reason = DeadLetter("ns-gt-output-dead", "", f"{POISON_MARKER} topic")
    problems = broken_bounds(
        observed(dead_letters=[*observed().dead_letters, stranger, no_reason], poison_injected=2)
    )
    assert any("dead letter in ns.dispatcher.dead (delivery_limit)" in p for p in problems)
    assert any("without a reason" in p for p in problems)
    assert broken_bounds(observed(dead_letters=[]))[0].startswith("1 poison messages injected, 0")


def test_rss_growth_beyond_the_tolerance_breaks_the_bound() -> None:
    grown = RssWindow("postproc", 11, 150, 100_000, 111_000)
    problems = broken_bounds(observed(rss=[grown]))
    assert problems and problems[0].startswith("postproc RSS grew +11.0%")
    assert broken_bounds(observed(rss=[grown], rss_tolerance=None)) == []


def test_duplicate_live_tasks_and_unexpected_exits_break_bounds() -> None:
    problems = broken_bounds(observed(live_duplicates=2, unexpected_exits=["listener (exit 1)"]))
    assert problems == [
        "2 duplicate live tasks in Ground Truth",
        "processes exited on their own: listener (exit 1)",
    ]


def test_the_rss_baseline_is_the_last_instance_after_its_first_clips() -> None:
    watch = Watch()
    own = 1  # this process: /proc/<pid>/status is always readable
    watch.sample(0, 0, {"svc": own})
    watch.samples[-1] = replace(watch.samples[-1], rss={"svc": (99, 500)})  # an earlier instance
    for clips, kib in ((5, 1000), (25, 1100), (60, 1150)):
        watch.sample(clips, clips, {"svc": own})
        watch.samples[-1] = replace(watch.samples[-1], rss={"svc": (own, kib)})
    (window,), unjudged = watch.windows(after_clips=20)
    assert unjudged == []
    assert (window.baseline_kib, window.end_kib, window.clips_seen) == (1100, 1150, 35)
    assert watch.windows(after_clips=100) == ([], ["svc"])


# Three clips through every fault, fast: a kill every few seconds, one job recycled, the poison,
# no memory judgement. Ground Truth's days keep the full soak's scale: at 5e-6 the scaled 5-day
# level timeout (2.2 s, 6 re-triggers) failed a clip on a machine at load 33.
SMOKE = SoakPlan(
    clips=3,
    feed_seconds=8,
    drain_seconds=120,
    settle_seconds=3,
    clip_seconds=1,
    fps=2,
    kill_every_seconds=2.5,
    kill_until=1.0,
    restart_after_max_seconds=0.5,
    drop_every_seconds=4,
    recycles=(JobRecycle("VOTVehicle", 0.3),),
    recycle_hold_seconds=1,
    poison_at=0.05,
    sample_seconds=1,
    depth_every_samples=5,
    progress_every_samples=0,
    rss_after_clips=1,
    rss_tolerance=None,
)


@pytest.mark.e2e
@pytest.mark.integration
async def test_a_short_soak_under_every_fault_holds_its_bounds(
    tmp_path: Path, rabbitmq: str
) -> None:
    result = await soak(SMOKE, tmp_path)
    assert broken_bounds(result.observed) == [], result.errors
    assert len(result.observed.uploaded) == SMOKE.clips
    done = result.chaos_done
    assert done["kills"] >= 1 and done["restarts"] == done["kills"], result.journal
    assert done["broker_drops"] >= 1 and done["jobs_recreated"] == 1 and done["poison"] == 2
    assert result.throttles > 0
    assert result.errors == []
    assert all(s.rss for s in result.watch.samples)
