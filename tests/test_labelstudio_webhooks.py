"""The listener's Label Studio webhook endpoint and expiry rule (no server, no broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.listener.webhooks import PATH, WebhookReceiver, task_and_project
from shared.clock import FakeClock
from shared.labeling.labelstudio.backend import WEBHOOK_SECRET_HEADER
from shared.labeling.labelstudio.outputs import EXPIRED_META, Outputs
from shared.labeling.streaming_job import StreamingJob
from shared.settings import Settings

SECRET = "s3cret-shared-with-label-studio"


def job(project: int = 7) -> StreamingJob:
    return StreamingJob(
        name="VOTVehicle",
        gt_name="t-VOTVehicle",
        arn=f"labelstudio:project/{project}",
        job_type="vehicle",
        task_type="VideoObjectTracking",
        label_attribute="VOTVehicle-ref",
        input_topic_arn="arn:aws:sns:us-east-1:000000000000:t-VOTVehicle-input",
        output_topic_arn="arn:aws:sns:us-east-1:000000000000:t-VOTVehicle-output",
        label_config_uri="s3://b/label-config/VOTVehicle.json",
        backend="labelstudio",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        task_availability_seconds=600,
        task_time_limit_seconds=300,
        max_concurrent_tasks=10,
    )


class FakeClient:
    def __init__(self) -> None:
        self.tasks = {11: {"id": 11, "project": 7, "updated_at": "2026-01-01T00:00:01Z"}}

    async def get_task(self, task: int) -> dict[str, Any]:
        return self.tasks[task]


class FakeSide:
    """The part of the listener's Label Studio side the receiver uses."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.jobs = {"VOTVehicle": job()}
        self.handled: list[tuple[int, str]] = []

    def job_for_project(self, project: int) -> StreamingJob | None:
        return self.jobs["VOTVehicle"] if project == 7 else None

    async def refresh(self) -> None:
        return None

    async def handle_task(self, job: StreamingJob, task: dict[str, Any], via: str = "") -> bool:
        self.handled.append((int(task["id"]), via))
        return True


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[TestClient[Any, Any], FakeSide, WebhookReceiver]]:
    side = FakeSide()
    receiver = WebhookReceiver(side, SECRET)  # type: ignore[arg-type]
    async with TestClient(TestServer(receiver.app())) as client:
        yield client, side, receiver


BODY = {"action": "ANNOTATION_CREATED", "task": {"id": 11}, "project": {"id": 7}}


async def test_a_webhook_with_the_shared_secret_is_translated(webhook: Any) -> None:
    client, side, receiver = webhook
    response = await client.post(PATH, json=BODY, headers={WEBHOOK_SECRET_HEADER: SECRET})
    assert response.status == 200
    assert side.handled == [(11, "webhook")]
    assert receiver.counters.accepted == 1


@pytest.mark.parametrize("headers", [{}, {WEBHOOK_SECRET_HEADER: "guess"}, {"X-Other": SECRET}])
async def test_a_forged_webhook_is_refused(webhook: Any, headers: dict[str, str]) -> None:
    client, side, receiver = webhook
    response = await client.post(PATH, json=BODY, headers=headers)
    assert response.status == 401
    assert side.handled == []
    assert receiver.counters.refused == 1


async def test_without_a_configured_secret_every_webhook_is_refused() -> None:
    side = FakeSide()
    receiver = WebhookReceiver(side, "")  # type: ignore[arg-type]
    async with TestClient(TestServer(receiver.app())) as client:
        response = await client.post(PATH, json=BODY, headers={WEBHOOK_SECRET_HEADER: ""})
        assert response.status == 401
    assert side.handled == []


async def test_a_webhook_for_an_unknown_project_or_a_task_elsewhere_is_refused(
    webhook: Any,
) -> None:
    client, side, _ = webhook
    headers = {WEBHOOK_SECRET_HEADER: SECRET}
    other = {**BODY, "project": {"id": 99}}
    assert (await client.post(PATH, json=other, headers=headers)).status == 404
    side.client.tasks[11]["project"] = 8  # the body lies about the task's project
    assert (await client.post(PATH, json=BODY, headers=headers)).status == 404
    assert side.handled == []


async def test_bad_bodies_get_a_clear_refusal_and_other_actions_are_ignored(
    webhook: Any,
) -> None:
    client, side, receiver = webhook
    headers = {WEBHOOK_SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    assert (await client.post(PATH, data=b"{not json", headers=headers)).status == 400
    no_ids = {"action": "ANNOTATION_CREATED", "task": {"id": "eleven"}}
    assert (await client.post(PATH, json=no_ids, headers=headers)).status == 400
    deleted = {**BODY, "action": "ANNOTATIONS_DELETED"}
    assert (await client.post(PATH, json=deleted, headers=headers)).status == 200
    assert receiver.counters.ignored == 1
    assert side.handled == []


def test_the_task_and_project_come_from_ids_only() -> None:
    assert task_and_project(BODY) == (11, 7)
    assert task_and_project({"annotation": {"task": 3}, "task": {"project": 5}}) == (3, 5)
    assert task_and_project({"task": {"id": True}, "project": {"id": 1}}) is None
    assert task_and_project(["not", "a", "dict"]) is None


def test_a_task_expires_after_the_scaled_availability_lifetime() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    settings = Settings.load(labelstudio__time_scale=0.5)
    outputs = Outputs(None, settings, None, clock)  # type: ignore[arg-type]
    created = "2026-01-01T00:05:00.000000Z"  # 300 s ago; lifetime 600 s x 0.5 = 300 s
    task: dict[str, Any] = {"id": 1, "created_at": created, "total_annotations": 0, "meta": {}}
    assert outputs.due_to_expire(job(), task)
    assert not outputs.due_to_expire(job(), {**task, "created_at": "2026-01-01T00:05:01Z"})
    assert not outputs.due_to_expire(job(), {**task, "total_annotations": 1})
    assert not outputs.due_to_expire(job(), {**task, "meta": {EXPIRED_META: "earlier"}})
