"""The listener's lookup of a Ground Truth output's worker: where the file is, what it costs.

Ground Truth writes each worker's answer to ``<job>/annotations/worker-response/iteration-<n>/
<data object>/<timestamp>.json`` (sms-data-output, "Annotations Directory"). The iteration
folders of a job are remembered, so an output costs one listing of its data object's folder
and one read, and the iterations are listed again only when the data object is in none known.
"""

from __future__ import annotations

import pytest

from emulators.workforce import SimulatedWorker, worker_response
from services.listener.listener import Listener
from services.listener.worker_responses import WorkerResponses
from shared.aws import AwsClients
from shared.groundtruth.messages import OutputMessage, OutputStatus
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.dispatch import Recorder
from tests.support.requests import counting

JOB = "gt-output/job-a/annotations"


async def answer(
    store: S3Store, bucket: str, iteration: int, data_object: str, worker: str, at: float
) -> str:
    """A worker's response file where Ground Truth writes it; the label URI of its object."""
    name = f"{int(at)}.json"  # timestamped names: the greatest is the latest answer
    key = f"{JOB}/worker-response/iteration-{iteration}/{data_object}/{name}"
    await store.put_json(bucket, key, worker_response(SimulatedWorker(worker_id=worker), at, at))
    output = f"{JOB}/consolidated-annotation/output/{data_object}/SeqLabel.json"
    return f"s3://{bucket}/{output}"


async def test_an_output_costs_one_listing_and_one_read_once_the_job_is_known(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    store, bucket = S3Store(policy_aws), policy_settings.names.bucket
    first = await answer(store, bucket, 1, "0", "w0", 1_700_000_000)
    second = await answer(store, bucket, 1, "1", "w1", 1_700_000_010)
    workers = WorkerResponses(policy_aws)
    async with counting(policy_aws, "s3") as opening:
        found = await workers.worker_of(first)
    assert found is not None and found.worker_id == "w0"
    assert opening.operations() == {"ListObjectsV2": 2, "GetObject": 1}  # iterations, folder
    async with counting(policy_aws, "s3") as known:
        found = await workers.worker_of(second)
    assert found is not None and found.worker_id == "w1"
    assert known.operations() == {"ListObjectsV2": 1, "GetObject": 1}
    assert known.of("ListObjectsV2") == [f"{JOB}/worker-response/iteration-1/1/"]


async def test_a_new_iteration_is_found_by_listing_again(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    store, bucket = S3Store(policy_aws), policy_settings.names.bucket
    workers = WorkerResponses(policy_aws)
    assert await workers.worker_of(await answer(store, bucket, 1, "0", "w0", 1_700_000_000))
    later = await answer(store, bucket, 2, "5", "w5", 1_700_000_100)
    async with counting(policy_aws, "s3") as new:
        found = await workers.worker_of(later)
    assert found is not None and found.worker_id == "w5"
    # not in iteration 1 (the newest known), the iterations again, then iteration 2
    assert new.operations() == {"ListObjectsV2": 3, "GetObject": 1}
    next_uri = await answer(store, bucket, 2, "6", "w6", 1_700_000_110)
    async with counting(policy_aws, "s3") as next_one:
        found = await workers.worker_of(next_uri)
    assert found is not None and found.worker_id == "w6"
    assert next_one.operations() == {"ListObjectsV2": 1, "GetObject": 1}
    # a data object of an older iteration is still found, newest iteration first
    older = await answer(store, bucket, 1, "2", "w2", 1_700_000_020)
    found = await workers.worker_of(older)
    assert found is not None and found.worker_id == "w2"


async def test_the_latest_answer_wins_and_a_missing_file_is_no_worker(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    store, bucket = S3Store(policy_aws), policy_settings.names.bucket
    workers = WorkerResponses(policy_aws)
    await answer(store, bucket, 1, "0", "early", 1_700_000_000)
    uri = await answer(store, bucket, 1, "0", "late", 1_700_000_050)
    found = await workers.worker_of(uri)
    assert found is not None and found.worker_id == "late"
    missing = f"s3://{bucket}/{JOB}/consolidated-annotation/output/9/SeqLabel.json"
    assert await workers.worker_of(missing) is None
    assert await workers.worker_of(f"s3://{bucket}/labels/clip.json") is None


@pytest.mark.parametrize("tracked", [True, False])
async def test_where_workers_are_not_tracked_an_output_names_none_and_costs_no_request(
    policy_aws: AwsClients, policy_settings: Settings, tracked: bool
) -> None:
    """LAVA_LABELING__WORKER_IDENTITIES=false: no worker-response file is read (a works
    council may forbid tracking workers one by one); quality reports count it as unknown."""
    store, bucket = S3Store(policy_aws), policy_settings.names.bucket
    label_uri = await answer(store, bucket, 1, "0", "w0", 1_700_000_000)
    settings = policy_settings.replace(labeling__worker_identities=tracked)
    listener = Listener(settings, policy_aws, Recorder())
    output = OutputMessage(
        status=OutputStatus.COMPLETED,
        label_attribute="vehicle-ref",
        job_name="job-a",
        label_uri=label_uri,
        metadata={},
        dedup_key=None,
        source_ref=None,
    )
    async with counting(policy_aws, "s3") as calls:
        found = await listener.worker_of(output)
    assert (found.worker_id if found else None) == ("w0" if tracked else None)
    assert bool(calls.made) is tracked
