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
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.events import JobName, S3Uri

# Bounds a request can name (a level count of 10**9 would allocate as many lists).
MAX_LEVELS = 10
MAX_JOBS = 30


class ClipInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clipS3Uri: S3Uri
    fps: float = Field(gt=0, le=120)


class ChainInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chainFromJobName: JobName


class SpecJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobName: JobName
    inputConfig: ClipInput | ChainInput
    jobLevel: Annotated[int, Field(ge=1, le=MAX_LEVELS)]


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labelingJobs: list[SpecJob] = Field(min_length=1, max_length=MAX_JOBS)

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

    def clip_inputs(self) -> ClipInput:
        inputs = {
            (j.inputConfig.clipS3Uri, j.inputConfig.fps)
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
