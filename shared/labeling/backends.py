"""Labeling backends: where a streaming job actually runs.

Ground Truth is closed to new AWS customers and no AWS emulator implements
``CreateLabelingJob``, so the pipeline talks to a backend interface with two implementations:
SageMaker (the real API, through aiobotocore) and the local emulator (``emulators/
groundtruth``), which needs only its input queue to exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.clock import Clock, SystemClock
from shared.groundtruth import limits
from shared.groundtruth.job_types import TaskType, job_type
from shared.labeling.streaming_job import ENDED, IN_PROGRESS, INITIALIZING, StreamingJob
from shared.sns_sqs import queue_arn, topic_send_policy

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import LabelingSettings

# Ground Truth's built-in Lambdas (pre-annotation, annotation consolidation) live in one AWS
# account per region (CreateLabelingJob API reference); the task UIs in account 394669845002.
GT_LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
GT_UI_ACCOUNT = "394669845002"


class BackendError(RuntimeError):
    pass


@dataclass(frozen=True)
class JobStatus:
    """What a backend says of a job, with DescribeLabelingJob's meaning: ``status`` is one of
    Initializing, InProgress, Completed, Failed, Stopping, Stopped; only an InProgress job takes
    input. ``reason`` says why it ended (FailureReason, or the backend's own words)."""

    status: str
    reason: str | None = None

    @property
    def accepting_input(self) -> bool:
        return self.status == IN_PROGRESS


class LabelingBackend(Protocol):
    """Where streaming jobs run. Three calls, all idempotent to retry:

    - ``create(job) -> ARN`` starts the job (it is Initializing at first);
    - ``describe(job) -> JobStatus`` - its status now (asked by ``JobManager.refresh``, which
      records it in the registry; the dispatcher sends only to InProgress jobs);
    - ``stop(job)`` stops it (it then takes no input; ``lava jobs create`` makes a new
      generation).
    """

    kind: str

    async def create(self, job: StreamingJob) -> str: ...

    async def describe(self, job: StreamingJob) -> JobStatus: ...

    async def stop(self, job: StreamingJob) -> None: ...


def _region_account(region: str) -> str:
    try:
        return GT_LAMBDA_ACCOUNTS[region]
    except KeyError:
        known = ", ".join(sorted(GT_LAMBDA_ACCOUNTS))
        raise BackendError(
            f"Ground Truth video jobs are not offered in {region} ({known})"
        ) from None


def create_labeling_job_request(
    job: StreamingJob, settings: LabelingSettings, output_path: str
) -> dict[str, Any]:
    """The CreateLabelingJob request for a streaming video job (pure; unit-tested against
    botocore's service model)."""
    region = settings.aws.region
    account = _region_account(region)
    task = TaskType(job.task_type)
    task_name = task.value  # VideoObjectTracking | VideoObjectDetection
    variant = f"Adjustment{task_name}" if job.adjusts else task_name
    spec = job_type(job.job_type)
    if not settings.labeling.role_arn or not settings.labeling.workteam_arn:
        raise BackendError(
            "the SageMaker backend needs LAVA_LABELING__ROLE_ARN and LAVA_LABELING__WORKTEAM_ARN"
        )
    if job.task_availability_seconds < limits.MIN_TASK_AVAILABILITY_SECONDS or (
        job.task_availability_seconds > limits.MAX_TASK_AVAILABILITY_SECONDS_PRIVATE
    ):
        raise BackendError("TaskAvailabilityLifetimeInSeconds must be 60 s - 30 days")
    if (
        not limits.MIN_TASK_TIME_LIMIT_SECONDS
        <= job.task_time_limit_seconds
        <= limits.MAX_VIDEO_TASK_TIME_LIMIT_SECONDS
    ):
        raise BackendError("TaskTimeLimitInSeconds must be 30 s - 30 days for video jobs")
    if job.workers_per_object != limits.VIDEO_WORKERS_PER_OBJECT:
        raise BackendError(
            f"NumberOfHumanWorkersPerDataObject must be 1 for video jobs "
            f"(got {job.workers_per_object})"
        )
    verb = "Adjust" if job.adjusts else "Label"
    return {
        "LabelingJobName": job.gt_name,
        "LabelAttributeName": job.label_attribute,
        "InputConfig": {"DataSource": {"SnsDataSource": {"SnsTopicArn": job.input_topic_arn}}},
        "OutputConfig": {"S3OutputPath": output_path, "SnsTopicArn": job.output_topic_arn},
        "RoleArn": settings.labeling.role_arn,
        "LabelCategoryConfigS3Uri": job.label_config_uri,
        "HumanTaskConfig": {
            "WorkteamArn": settings.labeling.workteam_arn,
            "UiConfig": {
                "HumanTaskUiArn": f"arn:aws:sagemaker:{region}:{GT_UI_ACCOUNT}:"
                f"human-task-ui/{task_name}"
            },
            "PreHumanTaskLambdaArn": f"arn:aws:lambda:{region}:{account}:function:PRE-{variant}",
            "TaskKeywords": ["Video", "Driving", spec.name.replace("_", " ")],
            "TaskTitle": f"{verb} {spec.name.replace('_', ' ')}s in a driving clip"[:128],
            "TaskDescription": spec.short_instruction[:255],
            "NumberOfHumanWorkersPerDataObject": job.workers_per_object,
            "TaskTimeLimitInSeconds": job.task_time_limit_seconds,
            "TaskAvailabilityLifetimeInSeconds": job.task_availability_seconds,
            "MaxConcurrentTaskCount": job.max_concurrent_tasks,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": (
                    f"arn:aws:lambda:{region}:{account}:function:ACS-{variant}"
                )
            },
        },
        "Tags": [{"Key": "lava:namespace", "Value": settings.namespace}],
    }


class SageMakerBackend:
    """The real Ground Truth, through SageMaker's API.

    Never point it at the moto endpoint: moto answers these calls with HTTP 500 and botocore
    retries them for seconds.
    """

    kind = "sagemaker"

    def __init__(self, aws: AwsClients, settings: LabelingSettings) -> None:
        self._aws = aws
        self._settings = settings

    async def create(self, job: StreamingJob) -> str:
        request = create_labeling_job_request(
            job, self._settings, f"s3://{self._settings.names.bucket}/gt-output/"
        )
        client = await self._aws.sagemaker()
        response = await client.create_labeling_job(**request)
        return str(response["LabelingJobArn"])

    async def describe(self, job: StreamingJob) -> JobStatus:
        client = await self._aws.sagemaker()
        response = await client.describe_labeling_job(LabelingJobName=job.gt_name)
        reason = response.get("FailureReason")
        return JobStatus(str(response["LabelingJobStatus"]), str(reason) if reason else None)

    async def stop(self, job: StreamingJob) -> None:
        client = await self._aws.sagemaker()
        await client.stop_labeling_job(LabelingJobName=job.gt_name)


@runtime_checkable
class EmulatedLifecycle(Protocol):
    """Settings that carry the emulator's job lifecycle (``emulators.settings``)."""

    def emulated_in_progress_at(self, job: StreamingJob) -> datetime: ...


class EmulatorBackend:
    """The local Ground Truth emulator: creating a job creates its input queue, subscribed to
    the input topic, as Ground Truth does; the emulator process finds the job in the registry.

    Who decides an emulated job's status: a process whose settings carry the emulator's
    lifecycle (:class:`EmulatedLifecycle`: the emulator itself, the local runner, the tests)
    computes it; a production service has no emulator settings and reports what the registry
    holds, where the emulator process records each change (Initializing -> InProgress, the
    idle stop) - as Ground Truth's own DescribeLabelingJob would tell it."""

    kind = "emulator"

    def __init__(
        self, aws: AwsClients, settings: LabelingSettings, clock: Clock | None = None
    ) -> None:
        self._aws = aws
        self._settings = settings
        self._clock = clock or SystemClock()
        self._lifecycle = settings if isinstance(settings, EmulatedLifecycle) else None

    async def create(self, job: StreamingJob) -> str:
        sqs = await self._aws.sqs()
        sns = await self._aws.sns()
        created = await sqs.create_queue(QueueName=job.gt_queue_name)
        url = created["QueueUrl"]
        arn = await queue_arn(sqs, url)
        policy = topic_send_policy(arn, job.input_topic_arn)
        await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        await sns.subscribe(
            TopicArn=job.input_topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )
        region = self._settings.aws.region
        return f"arn:aws:sagemaker:{region}:000000000000:labeling-job/{job.gt_name.lower()}"

    async def describe(self, job: StreamingJob) -> JobStatus:
        """An ended job stays ended (the emulator records its idle stop in the registry);
        otherwise it is Initializing until its scaled initialising period is over."""
        if job.status in ENDED:
            return JobStatus(job.status, job.status_reason)
        if job.status == IN_PROGRESS:  # never back to Initializing
            return JobStatus(IN_PROGRESS)
        if self._lifecycle is None:  # the emulator process moves it on, in the registry
            return JobStatus(job.status, job.status_reason)
        if self._clock.now() < self._lifecycle.emulated_in_progress_at(job):
            return JobStatus(INITIALIZING)
        return JobStatus(IN_PROGRESS)

    async def stop(self, job: StreamingJob) -> None:
        # The emulator stops simulating jobs whose registry status is no longer InProgress.
        return None
