"""The soak's figures: a dictionary for JSON and the lines it prints."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime
from typing import Any

from bench.soak_run import SoakResult
from bench.soak_verdict import failed, lost, outcomes_per_clip


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def rss_figures(result: SoakResult) -> list[dict[str, Any]]:
    """Per process: RSS when the run reached N clips, the last instance's after its first N,
    and at the end (MiB)."""
    after = result.plan.rss_after_clips
    at_n = result.watch.at_clips(after)
    rows = []
    windows = {w.service: w for w in result.observed.rss}
    last = result.watch.samples[-1].rss if result.watch.samples else {}
    for name, (_pid, end_kib) in sorted(last.items()):
        window = windows.get(name)
        rows.append(
            {
                "process": name,
                f"run_at_{after}_clips_mib": _mib(at_n.rss[name][1])
                if at_n and name in at_n.rss
                else None,
                "instance_baseline_mib": _mib(window.baseline_kib) if window else None,
                "end_mib": _mib(end_kib),
                "growth": round(window.growth, 4) if window else None,
                "clips_since_baseline": window.clips_seen if window else None,
            }
        )
    return rows


def summary(result: SoakResult) -> dict[str, Any]:
    observed = result.observed
    per_clip = outcomes_per_clip(observed)
    kinds = Counter(o.event_type for o in observed.outcomes)
    loads = result.loads or [0.0]
    return {
        "machine_cores": os.cpu_count(),
        "load_1min": {
            "min": min(loads),
            "mean": round(sum(loads) / len(loads), 2),
            "max": max(loads),
        },
        "feed_minutes": round(result.feed_wall / 60, 1),
        "total_minutes": round(result.total_wall / 60, 1),
        "clips_uploaded": len(observed.uploaded),
        "clips_completed": len(
            {o.clip_id for o in observed.outcomes if o.event_type == "ClipCompleted"}
        ),
        "clips_failed": failed(observed),
        "clips_lost": lost(observed),
        "clips_in_flight_at_end": observed.in_flight,
        "outcomes_per_clip": dict(Counter(per_clip[c] for c in observed.uploaded)),
        "outcome_messages": dict(kinds),
        "duplicate_live_tasks": observed.live_duplicates,
        "faults": dict(result.chaos_done) | {"aws_throttles_injected": result.throttles},
        "emulator": dict(result.counters),
        "unexpected_exits": observed.unexpected_exits,
        "rss": rss_figures(result),
        "queue_peaks": result.watch.peak_depths(),
        "queue_end": {q: list(d) for q, d in result.watch.last_depths().items()},
        "dead_letters": [
            {"queue": d.queue, "reason": d.reason, "body": d.body[:160], "injected": d.injected}
            for d in observed.dead_letters
        ],
        "errors": result.errors,
    }


def report_lines(result: SoakResult, started: datetime) -> list[str]:
    figures = summary(result)
    load = figures["load_1min"]
    lines = [
        f"\nsoak of {started:%Y-%m-%d %H:%M} UTC: {figures['machine_cores']} cores, load (1 min) "
        f"{load['min']:.2f}-{load['max']:.2f}, mean {load['mean']:.2f}",
        f"  feed {figures['feed_minutes']} min, total {figures['total_minutes']} min",
        f"  clips: uploaded {figures['clips_uploaded']}, completed {figures['clips_completed']}, "
        f"failed {len(figures['clips_failed'])}, lost {len(figures['clips_lost'])}, still in "
        f"flight at the end {len(figures['clips_in_flight_at_end'])}",
        f"  outcome events per clip (distinct): {figures['outcomes_per_clip']}; messages seen "
        f"(with duplicate deliveries): {figures['outcome_messages']}",
        f"  duplicate live tasks: {figures['duplicate_live_tasks']}",
        f"  faults: {figures['faults']}",
        f"  emulator: {figures['emulator']}",
        f"  unexpected exits: {figures['unexpected_exits'] or 'none'}",
        "  RSS (MiB)      at N clips  instance base   end   growth  clips since base",
    ]
    for row in figures["rss"]:
        values = list(row.values())
        lines.append(
            f"    {values[0]:<12} {_show(values[1]):>10} {_show(row['instance_baseline_mib']):>14} "
            f"{row['end_mib']:>6} {_show(row['growth'], pct=True):>8} "
            f"{_show(row['clips_since_baseline']):>8}"
        )
    lines.append(f"  queue peaks: {figures['queue_peaks']}")
    lines.append(f"  queues at the end (ready, unacked): {figures['queue_end']}")
    lines.append(f"  dead letters: {len(figures['dead_letters'])}")
    for letter in figures["dead_letters"]:
        lines.append(
            f"    {letter['queue']}: {letter['reason'] or '(no reason)'} | {letter['body'][:80]}"
        )
    if figures["errors"]:
        lines.append(f"  soak errors: {figures['errors']}")
    return lines


def _show(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if pct else str(value)
