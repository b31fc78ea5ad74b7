"""What a soak run does and for how long: clips, faults and their schedule, bounds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobRecycle:
    """A streaming job stopped at ``at`` (share of the feed time) and created again later."""

    job: str
    at: float


@dataclass(frozen=True)
class SoakPlan:
    clips: int = 200
    feed_seconds: float = 20 * 60  # uploads are spread evenly over this time
    drain_seconds: float = 20 * 60  # then at most this long for the last outcomes...
    stall_seconds: float = 5 * 60  # ...and no longer than this without a new one
    settle_seconds: float = 15.0  # after the last outcome: late duplicates would show here
    # Short clips so two shared cores cope: small frames, few of them.
    width: int = 320
    height: int = 180
    clip_seconds: float = 2.0
    source_fps: int = 10
    fps: float = 2.0  # frames extracted per second of video
    # One workflow per clip, in turn; signs_lights has two jobs per level.
    workflows: tuple[tuple[str, ...], ...] = (("vehicles",), ("lanes",), ("signs_lights",))
    # Faults. Throttling, duplicate delivery and the expiry storm run all the time.
    time_scale: float = 2e-5  # Ground Truth's and the dispatcher's days, scaled
    throttle_rate: float = 0.05
    duplicate_delivery: bool = True
    expire_share: float = 0.3
    kill_every_seconds: float = 60.0  # a SIGKILL of one service, then a restart
    kill_until: float = 0.5  # share of the feed time; the last instances then live long
    restart_after_max_seconds: float = 3.0
    drop_every_seconds: float = 90.0  # the namespace's broker connections force-closed
    recycles: tuple[JobRecycle, ...] = (
        JobRecycle("VOTVehicle", 0.35),
        JobRecycle("AdjVOTLane", 0.65),
    )
    recycle_hold_seconds: float = 10.0  # how long a stopped job stays stopped
    poison_at: float = 0.1  # share of the feed time when the poison goes in
    # Sampling and bounds.
    sample_seconds: float = 10.0
    depth_every_samples: int = 3  # rabbitmqctl is slow: queue depths on every third sample
    progress_every_samples: int = 6  # a progress line about once a minute (0: none)
    rss_after_clips: int = 20
    rss_tolerance: float | None = 0.10  # None: too short to judge memory
    seed: int = 23

    @property
    def upload_interval(self) -> float:
        return self.feed_seconds / max(1, self.clips)

    def workflows_of(self, index: int) -> list[str]:
        return list(self.workflows[index % len(self.workflows)])
