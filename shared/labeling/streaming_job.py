"""A streaming labeling job as every component reads it: the model and its statuses.

One streaming job serves every clip of its modality, so a job is created once and found by
name by everything else: the dispatcher (input topic, label attribute), the listener (output
topics), the emulator (which jobs to simulate) and the operator's `lava jobs list`. Where jobs
are kept and what is done with them is ``shared/labeling/jobs.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import JobName

Backend = Literal["emulator", "sagemaker", "labelstudio"]

# DescribeLabelingJob's LabelingJobStatus values. A new job is Initializing; send nothing until
# it is InProgress (sms-streaming-create-job). A streaming job stops by itself after 10 days
# without input, or when an operator stops it; sends to it go nowhere then.
INITIALIZING = "Initializing"
IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
STOPPED = "Stopped"
FAILED = "Failed"
COMPLETED = "Completed"
ENDED = frozenset({STOPPING, STOPPED, FAILED, COMPLETED})  # re-create it to go on
STATUSES = (INITIALIZING, IN_PROGRESS, STOPPING, STOPPED, FAILED, COMPLETED)

# The fields that make up a job's configuration: creating a job again with the same values is
# a no-op, with different ones an error.
CONFIG_FIELDS = (
    "job_type",
    "adjusts",
    "backend",
    "label_attribute",
    "audit_label_attribute",
    "task_availability_seconds",
    "task_time_limit_seconds",
    "max_concurrent_tasks",
    "workers_per_object",
)


class StreamingJob(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: JobName = Field(description="Logical name, as workflows name it.")
    gt_name: str = Field(description="Name of the labeling job in Ground Truth (namespaced).")
    arn: str
    job_type: str
    task_type: str
    label_attribute: str
    adjusts: JobName | None = None
    audit_label_attribute: str | None = None
    input_topic_arn: str
    output_topic_arn: str
    label_config_uri: str
    backend: Backend
    # A closed set (the API's LabelingJobStatus): an enum in the OpenAPI document; stored and
    # compared as the string DescribeLabelingJob gives.
    status: str = Field(
        IN_PROGRESS,
        description="As DescribeLabelingJob last said.",
        json_schema_extra={"enum": list(STATUSES)},
    )
    status_reason: str | None = None
    generation: int = Field(
        1, ge=1, description="Re-creating an ended job makes a new Ground Truth job: +1."
    )
    created_at: AwareDatetime
    task_availability_seconds: int
    task_time_limit_seconds: int
    max_concurrent_tasks: int
    workers_per_object: int = 1
    counters: dict[str, int] = Field(default_factory=dict)
    archived_at: AwareDatetime | None = Field(
        None,
        description="Archived (stopped, then hidden from the job list; kept for the tasks "
        "that name it). Creating the job again makes it a new generation, not archived.",
    )

    @property
    def accepting_input(self) -> bool:
        return self.status == IN_PROGRESS

    def configuration(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    @property
    def gt_queue_name(self) -> str:
        # Ground Truth creates the job's input queue as GroundTruth-<job name lowercased>.
        return f"GroundTruth-{self.gt_name.lower()}"
