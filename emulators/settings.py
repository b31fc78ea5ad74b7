"""Settings of the local stand-ins: the Ground Truth emulator and the simulated Label Studio
annotator (``LAVA_EMULATOR__*``).

They live here, not in ``shared.settings``, so that no production process model has them: a
production service neither reads nor validates these variables. The emulator processes load
:class:`EmulatorSettings`; the local runner, the tests and the CLI's local commands load
:class:`LocalSettings` (every production group and this one).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from emulators.workforce import SimulatedWorker
from shared.labeling.streaming_job import StreamingJob
from shared.settings import Group, LabelingSettings, Settings


class EmulatorConfig(Group):
    """The Ground Truth emulator and the simulated Label Studio annotator (local runs)."""

    time_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies every Ground Truth duration the emulator simulates (retention, "
        "availability lifetime); e.g. 1e-5 turns 14 days into 12 s.",
    )
    worker_rate: float = Field(
        5.0, gt=0, description="Tasks the simulated workforce starts per second, per job."
    )
    latency_min_seconds: float = Field(
        0.5, ge=0, description="Shortest time a worker takes on a task."
    )
    latency_max_seconds: float = Field(
        2.0, ge=0, description="Longest time a worker takes on a task."
    )
    expire_share: float = Field(
        0.0, ge=0, le=1, description="Share of tasks nobody takes (they expire)."
    )
    box_jitter: float = Field(
        0.0, ge=0, description="Level-1 label noise: max pixels a box edge is moved."
    )
    miss_share: float = Field(
        0.0, ge=0, le=1, description="Level-1 label noise: share of objects left out."
    )
    wrong_attribute_share: float = Field(
        0.0, ge=0, le=1, description="Level-1 label noise: share of objects with a wrong attribute."
    )
    workers: list[SimulatedWorker] = Field(
        default_factory=list,
        max_length=64,
        description="Simulated workers of different skill (JSON list of {worker_id, box_jitter, "
        "miss_share, wrong_attribute_share, weight, adjusts}); each first-level task goes to a "
        "worker, each adjustment task to a reviewer (`adjusts: true`; none: "
        "`emulated-reviewer-1`), drawn by weight. Empty: one worker `emulated-worker-1` with "
        "the global noise settings.",
    )
    adjust_fix_share: float = Field(
        0.8, ge=0, le=1, description="Share of level-1 mistakes an adjustment job corrects."
    )
    seed: int = Field(7, description="Seed of the emulator's choices (deterministic).")
    profile: Literal["realistic", "ideal"] = Field(
        "realistic",
        description="`realistic`: outputs as the AWS guide shows them (UUID object ids, partial "
        "attribute sets, class maps of present classes, the bare expired shape, adjustment-status "
        "only when adjusted, an Initializing period that loses input, the 10-day idle stop); "
        "`ideal`: the kinder seed behaviour, for unit tests.",
    )
    partial_attribute_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Realistic profile: share of a tracked object's later frames whose attribute "
        "set is partial or empty (the first frame of a track always has all).",
    )
    initializing_seconds: float = Field(
        300.0,
        ge=0,
        description="Realistic profile: how long a new job stays Initializing (Ground Truth time, "
        "scaled by LAVA_EMULATOR__TIME_SCALE); input published meanwhile is lost.",
    )
    idle_stop_seconds: float = Field(
        10 * 24 * 3600.0,
        ge=0,
        description="Realistic profile: a job without input this long stops by itself (Ground "
        "Truth: 10 days; scaled by LAVA_EMULATOR__TIME_SCALE; 0 = never).",
    )
    poll_seconds: float = Field(
        0.5, gt=0, description="How often the emulator checks queues, due tasks and new jobs."
    )

    @property
    def realistic(self) -> bool:
        return self.profile == "realistic"

    @property
    def workforce(self) -> list[SimulatedWorker]:
        """The configured workers, or the one worker labeling with the global noise."""
        if self.workers:
            return list(self.workers)
        return [
            SimulatedWorker(
                worker_id="emulated-worker-1",
                box_jitter=self.box_jitter,
                miss_share=self.miss_share,
                wrong_attribute_share=self.wrong_attribute_share,
            )
        ]

    def in_progress_at(self, job: StreamingJob) -> datetime:
        """When an emulated job leaves Initializing (realistic profile; at once when ideal)."""
        if not self.realistic:
            return job.created_at
        return job.created_at + timedelta(seconds=self.initializing_seconds * self.time_scale)


class EmulatorSettings(LabelingSettings):
    """What the emulator processes load (the Ground Truth emulator, the simulated annotator)."""

    emulator: EmulatorConfig = EmulatorConfig()

    def emulated_in_progress_at(self, job: StreamingJob) -> datetime:
        """The emulated job lifecycle (``shared.labeling.backends.EmulatedLifecycle``)."""
        return self.emulator.in_progress_at(job)


class LocalSettings(Settings, EmulatorSettings):
    """Every production group and the emulator's: the local runner, the tests and the CLI's
    commands that create emulated jobs."""
