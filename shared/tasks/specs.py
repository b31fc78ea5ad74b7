"""The original pipeline's explicit task form, accepted by `lava tasks create --spec FILE`:

```json
{"labelingJobs": [
  {"jobName": "VOTVehicle", "inputConfig": {"clipS3Uri": "s3://b/raw/clip.mp4", "fps": 1},
   "jobLevel": 1},
  {"jobName": "AdjVOTVehicle", "inputConfig": {"chainFromJobName": "VOTVehicle"},
   "jobLevel": 2}
]}
```

It becomes an ad-hoc workflow (named after its levels, so the same spec is the same workflow)
and a ClipIngested for the clip.

The original system's own field names are accepted as aliases, so its specs can be sent
verbatim: ``batchId`` (the clip id), ``inputConfig.inputManifestS3Uri`` (the clip's URI; its
fps then defaults to ``LAVA_LABELING__SPEC_FPS``), and each job's ``jobType``,
``jobModality``, ``labelCategoryConfigS3Uri``, ``maxConcurrentTaskCount``,
``taskAvailabilityLifetimeInSeconds``, ``taskTimeLimitInSeconds`` and ``workteamArn``. A job's
configuration is its registration here (``lava jobs create``, ``POST /v1/jobs``): those
fields are accepted, compared with it, and any difference is reported, never applied.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from shared.events import JobName, S3Uri
from shared.groundtruth import limits
from shared.labeling.streaming_job import StreamingJob

# Bounds a request can name (a level count of 10**9 would allocate as many lists).
MAX_LEVELS = 10
MAX_JOBS = 30


class ClipInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    clipS3Uri: S3Uri = Field(
        validation_alias=AliasChoices("clipS3Uri", "inputManifestS3Uri"),
        description="The clip's video (alias: the original's `inputManifestS3Uri`).",
    )
    fps: float | None = Field(None, gt=0, le=120, description="Default: LAVA_LABELING__SPEC_FPS.")


class ChainInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chainFromJobName: JobName


class SpecJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobName: JobName
    inputConfig: ClipInput | ChainInput
    jobLevel: Annotated[int, Field(ge=1, le=MAX_LEVELS)]
    # The original's job configuration: compared with the registered job, never applied.
    jobType: Literal["BATCH", "STREAMING"] | None = Field(
        None, description="The original's: every job here is a streaming job."
    )
    jobModality: str | None = Field(None, max_length=64, description="The original's.")
    labelCategoryConfigS3Uri: str | None = Field(
        None, max_length=1024, description="The original's; the registered job's is used."
    )
    maxConcurrentTaskCount: int | None = Field(None, ge=1, le=limits.MAX_CONCURRENT_TASKS)
    taskAvailabilityLifetimeInSeconds: int | None = Field(None, ge=1)
    taskTimeLimitInSeconds: int | None = Field(None, ge=1)
    workteamArn: str | None = Field(None, max_length=256)

    def differences(self, job: StreamingJob) -> list[str]:
        """Where the original's configuration of this job differs from its registration."""
        pairs = (
            ("maxConcurrentTaskCount", self.maxConcurrentTaskCount, job.max_concurrent_tasks),
            (
                "taskAvailabilityLifetimeInSeconds",
                self.taskAvailabilityLifetimeInSeconds,
                job.task_availability_seconds,
            ),
            ("taskTimeLimitInSeconds", self.taskTimeLimitInSeconds, job.task_time_limit_seconds),
        )
        return [
            f"{self.jobName}: {name} {given} not applied (the registered job has {registered})"
            for name, given, registered in pairs
            if given is not None and given != registered
        ]


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labelingJobs: list[SpecJob] = Field(min_length=1, max_length=MAX_JOBS)

    def duplicates(self) -> list[str]:
        """Jobs named more than once (each would be sent the same clip twice)."""
        names = [job.jobName for job in self.labelingJobs]
        return sorted({name for name in names if names.count(name) > 1})

    def levels(self) -> list[list[str]]:
        top = max(j.jobLevel for j in self.labelingJobs)
        levels: list[list[str]] = [[] for _ in range(top)]
        for job in self.labelingJobs:
            levels[job.jobLevel - 1].append(job.jobName)
        for number, level in enumerate(levels, start=1):
            if not level:
                raise ValueError(f"no job at level {number}: levels must run 1..{top}")
        for job in self.labelingJobs:
            source = job.inputConfig
            if job.jobLevel == 1 and not isinstance(source, ClipInput):
                raise ValueError(f"{job.jobName}: level-1 jobs take inputConfig.clipS3Uri + fps")
            if job.jobLevel > 1:
                if not isinstance(source, ChainInput):
                    raise ValueError(f"{job.jobName}: level {job.jobLevel} jobs chain from a job")
                if source.chainFromJobName not in levels[job.jobLevel - 2]:
                    raise ValueError(
                        f"{job.jobName} chains from {source.chainFromJobName}, which is not a "
                        f"level-{job.jobLevel - 1} job"
                    )
        return levels

    def clip_inputs(self, default_fps: float | None = None) -> ClipInput:
        inputs = {
            (j.inputConfig.clipS3Uri, j.inputConfig.fps or default_fps)
            for j in self.labelingJobs
            if isinstance(j.inputConfig, ClipInput)
        }
        if len(inputs) != 1:
            raise ValueError("every level-1 job must name the same clipS3Uri and fps")
        uri, fps = inputs.pop()
        return ClipInput(clipS3Uri=uri, fps=fps)

    def chains(self) -> dict[str, str]:
        return {
            j.jobName: j.inputConfig.chainFromJobName
            for j in self.labelingJobs
            if isinstance(j.inputConfig, ChainInput)
        }

    def workflow_name(self) -> str:
        digest = hashlib.sha256(repr(self.levels()).encode()).hexdigest()[:10]
        return f"spec-{digest}"
