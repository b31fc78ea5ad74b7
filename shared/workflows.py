"""Labeling workflows and the streaming jobs they use, read from a TOML file.

A workflow is an ordered list of levels; each level is a set of streaming jobs that run in
parallel on the same data object. A job of level N+1 that adjusts a job of level N starts from
that job's labels. The default file ships with the package (``shared/workflows.toml``);
``LAVA_LABELING__WORKFLOWS_FILE`` points at another.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.events import JobName, WorkflowName
from shared.groundtruth.job_types import JOB_TYPES

DEFAULT_FILE = Path(__file__).with_name("workflows.toml")


class WorkflowError(ValueError):
    pass


class JobDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    adjusts: JobName | None = None

    @model_validator(mode="after")
    def _known_type(self) -> JobDefinition:
        if self.type not in JOB_TYPES:
            raise ValueError(f"unknown job type {self.type!r} (known: {', '.join(JOB_TYPES)})")
        return self


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[list[JobName]] = Field(min_length=1)

    def jobs(self) -> list[str]:
        return [job for level in self.levels for job in level]


class WorkflowCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: dict[JobName, JobDefinition]
    workflows: dict[WorkflowName, Workflow]

    @model_validator(mode="after")
    def _consistent(self) -> WorkflowCatalog:
        for name, job in self.jobs.items():
            if job.adjusts is not None:
                audited = self.jobs.get(job.adjusts)
                if audited is None:
                    raise ValueError(f"job {name} adjusts unknown job {job.adjusts}")
                if audited.type != job.type:
                    raise ValueError(f"job {name} ({job.type}) adjusts a {audited.type} job")
        for wname, workflow in self.workflows.items():
            seen: set[str] = set()
            for number, level in enumerate(workflow.levels, start=1):
                if not level:
                    raise ValueError(f"workflow {wname}: level {number} has no jobs")
                for member in level:
                    if member not in self.jobs:
                        raise ValueError(f"workflow {wname}: unknown job {member}")
                    if member in seen:
                        raise ValueError(f"workflow {wname}: job {member} appears twice")
                    adjusts = self.jobs[member].adjusts
                    if adjusts is not None and (
                        number == 1 or adjusts not in workflow.levels[number - 2]
                    ):
                        raise ValueError(
                            f"workflow {wname}: {member} adjusts {adjusts}, which must be in the "
                            "level before it"
                        )
                seen.update(level)
        return self

    def workflow(self, name: str) -> Workflow:
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows))
            raise WorkflowError(f"unknown workflow {name!r} (known: {known})") from None


@lru_cache(maxsize=8)
def load_catalog(path: Path | None = None) -> WorkflowCatalog:
    source = path or DEFAULT_FILE
    try:
        data = tomllib.loads(source.read_text())
        return WorkflowCatalog.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkflowError(f"cannot read workflows file {source}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise WorkflowError(f"{source}: {err['msg']} at {'.'.join(map(str, err['loc']))}") from None
