"""The soak's bounds as a pure function: what a run observed in, the broken bounds out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

POISON_MARKER = "lava-soak-poison"  # in the body of every message the soak poisons on purpose


@dataclass(frozen=True)
class Outcome:
    """One ClipCompleted/ClipFailed seen in the outcomes mailbox."""

    clip_id: str
    event_type: str
    event_id: str
    reason: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """A message found in a dead-letter queue (RabbitMQ or the listener's SQS one)."""

    queue: str
    reason: str
    body: str

    @property
    def injected(self) -> bool:
        return POISON_MARKER in self.body


@dataclass(frozen=True)
class RssWindow:
    """A process's resident memory after its first clips and at the end of the run (KiB)."""

    service: str
    pid: int
    clips_seen: int  # outcomes between the baseline sample and the end
    baseline_kib: int
    end_kib: int

    @property
    def growth(self) -> float:
        return self.end_kib / self.baseline_kib - 1 if self.baseline_kib else 0.0


@dataclass
class Observed:
    """Everything the bounds are judged on."""

    uploaded: list[str]
    outcomes: list[Outcome]
    live_duplicates: int
    dead_letters: list[DeadLetter]
    poison_injected: int
    rss: list[RssWindow]
    unexpected_exits: list[str] = field(default_factory=list)
    rss_unjudged: list[str] = field(default_factory=list)  # no baseline after the first clips
    # Clips without an outcome that the pipeline was still working on when the drain ended
    # (its table says labeling, or events for it were still queued): slow, not lost.
    in_flight: list[str] = field(default_factory=list)
    rss_tolerance: float | None = 0.10  # None: too short a run to judge memory


def outcomes_per_clip(observed: Observed) -> Counter[str]:
    """Distinct outcome events per clip (a redelivery repeats the same event id)."""
    distinct = {(o.clip_id, o.event_id) for o in observed.outcomes}
    return Counter(clip for clip, _ in distinct)


def lost(observed: Observed) -> list[str]:
    """Clips uploaded that never had an outcome."""
    seen = outcomes_per_clip(observed)
    busy = set(observed.in_flight)
    return [c for c in observed.uploaded if seen[c] == 0 and c not in busy]


def failed(observed: Observed) -> dict[str, str]:
    """Good clips that ended in ClipFailed, with the reason."""
    return {o.clip_id: o.reason for o in observed.outcomes if o.event_type == "ClipFailed"}


def broken_bounds(observed: Observed) -> list[str]:
    """One line per broken bound; empty when the run held."""
    problems: list[str] = []
    if missing := lost(observed):
        problems.append(f"{len(missing)} clips lost (no outcome): {', '.join(missing[:10])}")
    if busy := observed.in_flight:
        problems.append(
            f"{len(busy)} clips still in flight when the drain ended (not lost: the pipeline "
            f"was behind): {', '.join(busy[:5])}"
        )
    per_clip = outcomes_per_clip(observed)
    if many := sorted(c for c, n in per_clip.items() if n > 1):
        problems.append(f"{len(many)} clips with more than one outcome: {', '.join(many[:10])}")
    if strangers := sorted(set(per_clip) - set(observed.uploaded)):
        problems.append(f"outcomes for clips never uploaded: {', '.join(strangers[:10])}")
    if bad := failed(observed):
        problems.append(f"{len(bad)} good clips failed: {sorted(bad.items())[:5]}")
    if observed.live_duplicates:
        problems.append(f"{observed.live_duplicates} duplicate live tasks in Ground Truth")
    problems += _dead_letter_problems(observed)
    problems += _rss_problems(observed)
    if observed.unexpected_exits:
        problems.append(f"processes exited on their own: {', '.join(observed.unexpected_exits)}")
    return problems


def _dead_letter_problems(observed: Observed) -> list[str]:
    problems = []
    for letter in observed.dead_letters:
        if not letter.injected:
            problems.append(f"dead letter in {letter.queue} ({letter.reason}): {letter.body[:120]}")
        elif not letter.reason:
            problems.append(f"injected poison in {letter.queue} without a reason")
    found = sum(1 for letter in observed.dead_letters if letter.injected)
    if found != observed.poison_injected:
        problems.append(
            f"{observed.poison_injected} poison messages injected, {found} in dead-letter queues"
        )
    return problems


def _rss_problems(observed: Observed) -> list[str]:
    tolerance = observed.rss_tolerance
    if tolerance is None:
        return []
    unjudged = [f"{s}: no RSS baseline after its first clips" for s in observed.rss_unjudged]
    return unjudged + [
        f"{w.service} RSS grew {w.growth:+.1%} ({w.baseline_kib / 1024:.1f} -> "
        f"{w.end_kib / 1024:.1f} MiB over {w.clips_seen} clips; bound {tolerance:.0%})"
        for w in observed.rss
        if w.growth > tolerance
    ]
