"""The job registry, its backends, and the SageMaker request checked against botocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.model import StructureShape
from botocore.validate import validate_parameters

from emulators.settings import LocalSettings
from shared.aws import AwsClients
from shared.labeling.backends import BackendError, create_labeling_job_request
from shared.labeling.jobs import JobConfigError, JobManager, max_job_name
from shared.labeling.streaming_job import StreamingJob
from shared.settings import DispatcherSettings, Settings, load_settings
from shared.storage import S3Store
from shared.workflows import WorkflowError, load_catalog
from tests.support.cli import table_rows

pytestmark = pytest.mark.integration


def _job(**changes: object) -> StreamingJob:
    data: dict[str, object] = {
        "name": "VOTVehicle",
        "gt_name": "prod-VOTVehicle",
        "arn": "",
        "job_type": "vehicle",
        "task_type": "VideoObjectTracking",
        "label_attribute": "VOTVehicle-ref",
        "input_topic_arn": "arn:aws:sns:us-east-1:123456789012:prod-VOTVehicle-input",
        "output_topic_arn": "arn:aws:sns:us-east-1:123456789012:prod-VOTVehicle-output",
        "label_config_uri": "s3://prod-data/label-config/VOTVehicle.json",
        "backend": "sagemaker",
        "created_at": "2026-01-01T00:00:00Z",
        "task_availability_seconds": 864000,
        "task_time_limit_seconds": 259200,
        "max_concurrent_tasks": 1000,
    }
    data.update(changes)
    return StreamingJob.model_validate(data)


SAGEMAKER = load_settings(
    namespace="prod",
    aws__region="us-west-2",
    labeling__role_arn="arn:aws:iam::123456789012:role/lava-gt",
    labeling__workteam_arn="arn:aws:sagemaker:us-west-2:123456789012:workteam/private-crowd/lava",
)
MODEL = botocore.session.get_session().get_service_model("sagemaker")
_input_shape = MODEL.operation_model("CreateLabelingJob").input_shape
assert _input_shape is not None
CREATE: StructureShape = _input_shape


@pytest.mark.parametrize(
    ("job", "variant"),
    [
        (_job(), "VideoObjectTracking"),
        (
            _job(
                adjusts="VOTX",
                audit_label_attribute="VOTX-ref",
                name="AdjVOTVehicle",
                gt_name="prod-AdjVOTVehicle",
                label_attribute="AdjVOTVehicle-ref",
            ),
            "AdjustmentVideoObjectTracking",
        ),
        (_job(job_type="traffic_sign", task_type="VideoObjectDetection"), "VideoObjectDetection"),
    ],
)
def test_sagemaker_request_validates_against_botocores_model(
    job: StreamingJob, variant: str
) -> None:
    request = create_labeling_job_request(job, SAGEMAKER, "s3://prod-data/gt-output/")
    validate_parameters(request, CREATE)
    human = request["HumanTaskConfig"]
    assert (
        request["InputConfig"]["DataSource"]["SnsDataSource"]["SnsTopicArn"] == job.input_topic_arn
    )
    assert request["OutputConfig"]["SnsTopicArn"] == job.output_topic_arn
    assert request["LabelAttributeName"].endswith("-ref")
    assert human["PreHumanTaskLambdaArn"] == (
        f"arn:aws:lambda:us-west-2:081040173940:function:PRE-{variant}"
    )
    assert human["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        f"ACS-{variant}"
    )
    assert human["UiConfig"]["HumanTaskUiArn"].endswith(f"human-task-ui/{job.task_type}")
    assert human["TaskAvailabilityLifetimeInSeconds"] == 864000


def test_video_task_time_limit_of_30_days_passes_the_api_model() -> None:
    job = _job(task_time_limit_seconds=30 * 24 * 3600)
    validate_parameters(create_labeling_job_request(job, SAGEMAKER, "s3://b/x/"), CREATE)


def test_botocore_model_catches_a_broken_request() -> None:
    request = create_labeling_job_request(_job(), SAGEMAKER, "s3://prod-data/gt-output/")
    del request["HumanTaskConfig"]["TaskTitle"]
    with pytest.raises(ParamValidationError, match="TaskTitle"):
        validate_parameters(request, CREATE)


@pytest.mark.parametrize(
    ("settings_change", "job_change", "reason"),
    [
        ({"labeling__role_arn": ""}, {}, "LAVA_LABELING__ROLE_ARN"),
        ({"aws__region": "mars-north-1"}, {}, "not offered in mars-north-1"),
        ({}, {"task_availability_seconds": 30}, "60 s - 30 days"),
        ({}, {"task_time_limit_seconds": 31 * 24 * 3600}, "30 s - 30 days"),
        ({}, {"workers_per_object": 3}, "must be 1 for video jobs"),
    ],
)
def test_sagemaker_request_refuses_what_ground_truth_would(
    settings_change: dict[str, object], job_change: dict[str, object], reason: str
) -> None:
    with pytest.raises(BackendError, match=reason):
        create_labeling_job_request(
            _job(**job_change), SAGEMAKER.replace(**settings_change), "s3://b/x/"
        )


async def test_create_registers_topics_label_config_and_queue(
    aws: AwsClients, settings: Settings
) -> None:
    manager = JobManager(aws, settings)
    first = await manager.create("VOTVehicle", "vehicle")
    assert first.created
    job = first.job
    assert job.gt_name == f"{settings.namespace}-VOTVehicle"
    assert job.label_attribute == "VOTVehicle-ref"
    sns = await aws.sns()
    for topic in (job.input_topic_arn, job.output_topic_arn):
        assert (await sns.get_topic_attributes(TopicArn=topic))["Attributes"]["TopicArn"] == topic
    config = await S3Store(aws).get_json(settings.names.bucket, "label-config/VOTVehicle.json")
    assert config["labels"][0]["label"] == "vehicle"
    sqs = await aws.sqs()
    queue = await sqs.get_queue_url(QueueName=f"GroundTruth-{job.gt_name.lower()}")
    attrs = await sqs.get_queue_attributes(
        QueueUrl=queue["QueueUrl"], AttributeNames=["Policy", "QueueArn"]
    )
    (allowed,) = json.loads(attrs["Attributes"]["Policy"])["Statement"]
    assert allowed["Resource"] == attrs["Attributes"]["QueueArn"]
    assert allowed["Condition"]["ArnLike"]["aws:SourceArn"] == job.input_topic_arn

    adjust = await manager.create("AdjVOTVehicle", "vehicle", adjusts="VOTVehicle")
    config = await S3Store(aws).get_json(settings.names.bucket, "label-config/AdjVOTVehicle.json")
    assert config["auditLabelAttributeName"] == "VOTVehicle-ref"
    assert adjust.job.audit_label_attribute == "VOTVehicle-ref"

    again = await manager.create("VOTVehicle", "vehicle")
    assert not again.created and again.job == job
    with pytest.raises(JobConfigError, match="job_type: 'vehicle' -> 'lane'"):
        await manager.create("VOTVehicle", "lane")
    with pytest.raises(JobConfigError, match="does not exist"):
        await manager.create("AdjNothing", "lane", adjusts="Nothing")

    stopped = await manager.stop("VOTVehicle")
    assert stopped.status == "Stopped"
    assert [(j.name, j.status) for j in await manager.registry.list()] == [
        ("AdjVOTVehicle", "InProgress"),
        ("VOTVehicle", "Stopped"),
    ]


async def test_default_workflows_create_every_job(aws: AwsClients, settings: Settings) -> None:
    catalog = load_catalog()
    results = await JobManager(aws, settings).create_from_catalog(catalog)
    assert {r.job.name for r in results} == set(catalog.jobs)
    again = await JobManager(aws, settings).create_from_catalog(catalog)
    assert not any(r.created for r in again)


def test_workflow_file_errors_are_clear(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "wf.toml"
    bad.write_text(
        '[jobs.A]\ntype = "vehicle"\n[jobs.B]\ntype = "lane"\nadjusts = "A"\n'
        '[workflows.w]\nlevels = [["A"], ["B"]]\n'
    )
    with pytest.raises(WorkflowError, match="B \\(lane\\) adjusts a vehicle job"):
        load_catalog(bad)
    with pytest.raises(WorkflowError, match="unknown workflow 'nope'"):
        load_catalog().workflow("nope")


def test_lava_jobs_cli(settings: Settings) -> None:
    env = dict(
        os.environ,
        LAVA_NAMESPACE=settings.namespace,
        AWS_ENDPOINT_URL=settings.aws.endpoint_url or "",
        LAVA_EMULATOR__PROFILE="ideal",
    )

    def lava(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lava", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    assert lava("stack", "provision").returncode in (0, 1)  # broker part may be unrelated
    made = lava("jobs", "create", "VOTLane", "--type", "lane")
    assert made.returncode == 0 and "VOTLane: created" in made.stdout, made.stderr
    same = lava("jobs", "create", "VOTLane", "--type", "lane")
    assert "exists (same configuration)" in same.stdout
    other = lava("jobs", "create", "VOTLane", "--type", "vehicle")
    assert other.returncode == 1 and "different configuration" in other.stderr
    listed = lava("jobs", "list")
    (row,) = table_rows(listed.stdout, "NAME")
    assert row["NAME"] == "VOTLane" and row["TYPE"] == "lane" and row["ADJUSTS"] == "-"
    assert row["BACKEND"] == "emulator" and row["STATUS"] == "InProgress" and row["GEN"] == "1"
    (entry,) = json.loads(lava("jobs", "list", "--json").stdout)
    assert entry["name"] == "VOTLane" and entry["status"] == "InProgress"
    assert lava("jobs", "stop", "VOTLane").returncode == 0
    assert "Stopped" in lava("jobs", "list").stdout
    refreshed = lava("jobs", "list", "--refresh")
    assert refreshed.returncode == 0 and "Stopped" in refreshed.stdout
    archived = lava("jobs", "archive", "VOTLane")
    assert archived.returncode == 0 and "VOTLane: archived" in archived.stdout, archived.stderr
    assert "VOTLane" not in lava("jobs", "list").stdout
    assert "VOTLane" in lava("jobs", "list", "--archived").stdout


async def test_refresh_records_a_job_that_ended_by_itself(
    aws: AwsClients, settings: Settings
) -> None:
    from services.dispatcher.jobs import JobDirectory
    from shared.labeling.backends import EmulatorBackend, JobStatus
    from shared.tasks.store import TaskStore

    class IdledOut(EmulatorBackend):
        async def describe(self, job: StreamingJob) -> JobStatus:
            # what Ground Truth reports after 10 days without input
            return JobStatus("Stopped", "no input for 10 days")

    manager = JobManager(aws, settings, backends={"emulator": IdledOut(aws, settings)})
    await manager.create("VOTVehicle", "vehicle")
    (job,) = await manager.refresh()
    assert (job.status, job.status_reason) == ("Stopped", "no input for 10 days")
    directory = JobDirectory(JobManager(aws, settings), TaskStore(aws, settings))
    found = await directory.get("VOTVehicle")
    assert found.status == "Stopped" and not found.accepting_input


async def test_a_new_job_is_initializing_then_in_progress(
    aws: AwsClients, settings: LocalSettings
) -> None:
    from shared.clock import FakeClock
    from shared.labeling.backends import EmulatorBackend

    realistic = settings.replace(emulator__profile="realistic", emulator__initializing_seconds=300)
    clock = FakeClock()
    backend = EmulatorBackend(aws, realistic, clock)
    manager = JobManager(aws, realistic, clock, backends={"emulator": backend})
    created = await manager.create("VOTVehicle", "vehicle")
    assert created.job.status == "Initializing"  # DescribeLabelingJob right after creation
    found = await manager.registry.get("VOTVehicle")
    assert found is not None and found.status == "Initializing"
    await clock.advance(299)
    assert (await manager.refresh())[0].status == "Initializing"
    await clock.advance(2)  # the emulated job's initialising period is over
    assert (await manager.refresh())[0].status == "InProgress"


async def test_a_production_service_takes_an_emulated_jobs_status_from_the_registry(
    aws: AwsClients, settings: LocalSettings
) -> None:
    """The dispatcher has no emulator settings: the emulator process records each change."""
    from shared.clock import FakeClock
    from shared.labeling.backends import EmulatorBackend
    from shared.labeling.streaming_job import IN_PROGRESS

    realistic = settings.replace(emulator__profile="realistic", emulator__initializing_seconds=1)
    clock = FakeClock()
    emulated = EmulatorBackend(aws, realistic, clock)
    await JobManager(aws, realistic, clock, {"emulator": emulated}).create("VOTVehicle", "vehicle")
    dispatcher = DispatcherSettings.load(namespace=settings.namespace, aws=settings.aws)
    production = JobManager(aws, dispatcher, clock)
    await clock.advance(3600)  # long past the emulated period: only the emulator may say so
    assert (await production.refresh())[0].status == "Initializing"
    job = await production.registry.get("VOTVehicle")
    assert job is not None
    await production.registry.set_status(job.name, IN_PROGRESS, None, job.generation)
    assert (await production.refresh())[0].status == "InProgress"


async def test_an_ended_job_is_created_again_as_a_new_generation(
    aws: AwsClients, settings: Settings
) -> None:
    manager = JobManager(aws, settings)
    first = (await manager.create("VOTVehicle", "vehicle")).job
    again = await manager.create("VOTVehicle", "vehicle")
    assert not again.created and again.job.generation == 1
    await manager.stop("VOTVehicle")
    second = await manager.create("VOTVehicle", "vehicle")
    assert second.created
    job = second.job
    assert (job.generation, job.status) == (2, "InProgress")
    assert job.gt_name == f"{first.gt_name}-g2"  # Ground Truth never reuses a job name
    assert job.input_topic_arn == first.input_topic_arn  # same topics, new job
    sqs = await aws.sqs()
    await sqs.get_queue_url(QueueName=job.gt_queue_name)  # its own input queue
    stored = await manager.registry.get("VOTVehicle")
    assert stored == job
    # archived (stopped first), then created again: a new generation, not archived
    archived = await manager.archive("VOTVehicle")
    assert archived.status == "Stopped" and archived.archived_at is not None
    assert "VOTVehicle" not in [j.name for j in await manager.registry.list(archived=False)]
    third = (await manager.create("VOTVehicle", "vehicle")).job
    assert third.generation == 3 and third.archived_at is None


async def test_a_job_name_is_bounded_by_every_name_derived_from_it(
    aws: AwsClients, settings: Settings
) -> None:
    manager = JobManager(aws, settings)
    bound = max_job_name(settings.namespace)
    # the Ground Truth name <ns>-<name>-g99 is the tightest: 63 characters
    assert bound == 63 - len(settings.namespace) - len("--g99")
    with pytest.raises(JobConfigError, match=f"has {bound + 1} characters; at most {bound}"):
        await manager.create("a" + "-" * (bound - 1) + "b", "vehicle")
    made = await manager.create("a" + "-" * (bound - 2) + "b", "vehicle")
    assert made.created and len(made.job.gt_queue_name) <= 80


async def test_video_jobs_take_one_worker_and_warn_above_the_default_concurrency(
    aws: AwsClients, settings: Settings
) -> None:
    two = settings.replace(labeling__workers_per_object=2)
    with pytest.raises(JobConfigError, match="NumberOfHumanWorkersPerDataObject must be 1"):
        await JobManager(aws, two).create("VOTVehicle", "vehicle")
    many = settings.replace(labeling__max_concurrent_tasks=2000)
    created = await JobManager(aws, many).create("VOTVehicle", "vehicle")
    assert created.created
    assert any("quota raise" in w for w in created.warnings)
