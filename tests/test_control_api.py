"""The control API against the real service process (real RabbitMQ, moto server): each role
against each route, problem details, bounded bodies, the mutation budget, audit lines, and
the operations the CLI shares (stop, retry, list pages)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.testing.events import expired, frames_ready
from lava.rig import SHA_METADATA, derive_clip_id
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.dataset.export_store import DatasetExport, ExportStatus, ExportStore
from shared.dataset.exports import ExportFormat
from shared.events import ClipIngested, decode_event
from shared.labeling.jobs import max_job_name
from shared.settings import Settings
from shared.storage import S3Store
from shared.tasks.model import TaskStatus
from tests.support.broker import get_messages
from tests.support.control import ControlProcess, control_service
from tests.support.dispatch import (
    Recorder,
    create_jobs,
    dispatch_settings,
    inputs,
    make,
    task_state,
)

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
ORIGINAL_SPEC = Path(__file__).parent / "fixtures" / "specs" / "original.json"
DRIVE = {"drive_id": "d9", "weather": "clear", "time_of_day": "night", "route": "A1"}
CLIP = {"scene": "tunnel", "traffic": "undefined", "traffic_density": "low"}


async def call(
    control: ControlProcess,
    method: str,
    path: str,
    role: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    sent = dict(control.auth(role) if role else {}, **(headers or {}))
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            control.url + path,
            json=body,
            data=data,
            headers=sent,
            allow_redirects=False,
        ) as response,
    ):
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return response.status, dict(response.headers), parsed


def route_table(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, concrete path, mutating) for every operation the OpenAPI document names."""
    samples = {
        "name": "VOTVehicle",
        "task_id": "clip-1.vehicles",
        "clip_id": "clip-1",
        "export_id": "x1",
    }
    found = []
    for template, operations in document["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], template)
        for method in operations:
            found.append((method.upper(), path, method != "get"))
    return found


def sample_body(method: str, path: str, bucket: str) -> Any:
    if path == "/v1/jobs" and method == "POST":
        return {"name": "VOTVehicle", "type": "vehicle"}
    if path == "/v1/tasks":
        return {
            "workflow": "vehicles",
            "clipS3Uri": f"s3://{bucket}/raw/x.mp4",
            "fps": 1,
            "drive": DRIVE,
            "clip": CLIP,
        }
    if path == "/v1/dataset/exports":
        return {"format": "coco", "where": {"weather": "rainy"}, "export_id": "x2"}
    if path == "/v1/tasks/spec":
        return {
            "labelingJobs": [
                {
                    "jobName": "VOTVehicle",
                    "jobLevel": 1,
                    "inputConfig": {"clipS3Uri": f"s3://{bucket}/raw/x.mp4", "fps": 1},
                }
            ],
            "drive": DRIVE,
            "clip": CLIP,
        }
    return None


async def test_each_role_against_each_route(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    await make(aws, s, FakeClock(), Recorder()).on_frames_ready(frames_ready(bucket=s.names.bucket))
    await ExportStore(aws, s).create(
        DatasetExport(
            export_id="x1",
            format=ExportFormat.MOT,
            where={},
            status=ExportStatus.QUEUED,
            requested_by="test",
            requested_at=0,
        )
    )
    async with control_service(s, tmp_path, LAVA_CONTROL__MUTATIONS_PER_MINUTE="1000") as control:
        status, _, document = await call(control, "GET", "/openapi.json")
        assert status == 200 and document["openapi"].startswith("3.1")
        routes = route_table(document)
        assert len(routes) == 17  # GET /v1/quality is the 17th
        bucket = s.names.bucket
        answers: list[tuple[str, str, int]] = []
        for method, path, mutating in routes:
            body = sample_body(method, path, bucket)
            # no credential, a wrong one, a wrong scheme: 401, and nothing said about why
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
                code, got, problem = await call(control, method, path, body=body, headers=headers)
                assert code == 401, (method, path, headers)
                assert got["Content-Type"] == PROBLEM and got["WWW-Authenticate"] == "Bearer"
                assert set(problem) == {"type", "title", "status", "instance"}
            code, _, problem = await call(control, method, path, "viewer", body)
            if mutating:
                assert code == 403 and "detail" not in problem, (method, path)
            else:
                assert code == 200, (method, path, problem)
            code, _, problem = await call(control, method, path, "operator", body)
            assert code not in (401, 403, 500), (method, path, problem)
            answers.append((method, path, code))
        # the two task creations were audited; the viewer's refusals changed nothing
        audits = [json.loads(line) for line in control.log().splitlines() if '"audit"' in line]
        assert {a["action"] for a in audits} >= {
            "jobs.create",
            "jobs.stop",
            "tasks.create",
            "tasks.create-spec",
            "tasks.stop",
            "tasks.retry",
            "dataset.export",
        }, answers
        assert all(a["who"] == "otto" and a["role"] == "operator" for a in audits)


async def test_stop_retry_and_pages_through_the_api(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings, dispatch__max_expirations=0)
    jobs = await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    for i in range(5):
        await dispatcher.on_frames_ready(frames_ready(f"clip-{i}", bucket=s.names.bucket))
    sent = {m["lava-dedup-id"].split("/")[0]: m for m in await inputs(aws, jobs["VOTVehicle"])}
    key = sent["clip-0.vehicles"]["lava-dedup-id"]
    await dispatcher.on_task_expired(expired("clip-0.vehicles", jobs["VOTVehicle"], key))

    async with control_service(s, tmp_path, LAVA_CONTROL__MUTATIONS_PER_MINUTE="3") as control:
        # pages of 2 through the 4 active tasks, then the end
        seen: list[str] = []
        cursor = None
        for _ in range(3):
            query = "/v1/tasks?status=active&limit=2" + (f"&cursor={cursor}" if cursor else "")
            code, _, page = await call(control, "GET", query, "viewer")
            assert code == 200
            seen += [t["task_id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"clip-{i}.vehicles" for i in range(1, 5)]
        code, _, problem = await call(control, "GET", "/v1/tasks?cursor=bm9wZQ", "viewer")
        assert code == 422 and "cursor" in problem["detail"]

        code, _, shown = await call(control, "GET", "/v1/tasks/clip-0.vehicles", "viewer")
        assert code == 200 and shown["task"]["status"] == "failed"
        assert shown["objects"][0]["expired_keys"] == [key]
        # one time format in every shape; the history tells the whole life from creation
        task = shown["task"]
        assert all(RFC3339.fullmatch(task[k]) for k in ("created_at", "updated_at"))
        assert RFC3339.fullmatch(shown["objects"][0]["last_sent_at"])
        assert [h["event"] for h in task["history"]][:2] == ["created", "level-started"]
        assert all(RFC3339.fullmatch(h["at"]) for h in task["history"])
        _, _, first = await call(control, "GET", "/v1/tasks?limit=1", "viewer")
        assert RFC3339.fullmatch(first["items"][0]["created_at"])

        # stop: once, twice (idempotent), then refused where it does not apply
        code, _, stopped = await call(
            control, "POST", "/v1/tasks/clip-1.vehicles/stop", "operator", {"reason": "test"}
        )
        assert code == 200 and stopped == {
            "task_id": "clip-1.vehicles",
            "changed": True,
            "objects_stopped": 1,
        }
        code, _, again = await call(control, "POST", "/v1/tasks/clip-1.vehicles/stop", "operator")
        assert code == 200 and again["changed"] is False
        task = await task_state(dispatcher, "clip-1.vehicles")
        assert task.status is TaskStatus.STOPPED and task.stopped_by == "token:otto"
        code, _, retried = await call(
            control, "POST", "/v1/tasks/clip-0.vehicles/retry", "operator"
        )
        assert code == 200 and retried["actions"][0].startswith("VOTVehicle: new key")
        # the budget (3 a minute) is spent: 429 with Retry-After
        code, headers, problem = await call(
            control, "POST", "/v1/tasks/clip-2.vehicles/stop", "operator"
        )
        assert code == 429 and int(headers["Retry-After"]) >= 1
        assert problem["status"] == 429 and headers["Content-Type"] == PROBLEM
        # reads are not budgeted
        code, _, clip = await call(control, "GET", "/v1/clips/clip-1", "viewer")
        assert code == 200 and clip["status"] == "stopped" and clip["tasks"] == ["clip-1.vehicles"]
        code, _, status = await call(control, "GET", "/v1/status", "viewer")
        funnel = {stage["stage"]: stage["tasks"] for stage in status["funnel"]}
        assert funnel["level 1"] == 4 and funnel["stopped"] == 1

        audits = [json.loads(line) for line in control.log().splitlines() if '"audit"' in line]
        stops = [a for a in audits if a["action"] == "tasks.stop"]
        assert [a["target"] for a in stops] == ["clip-1.vehicles", "clip-1.vehicles"]
        assert stops[0]["outcome"] == "ok" and stops[0]["who"] == "otto"


async def test_problem_details_and_bounded_bodies(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    await S3Store(aws).put_bytes(s.names.bucket, "raw/c.mp4", b"a clip")
    async with control_service(s, tmp_path, LAVA_CONTROL__MAX_BODY_BYTES="2048") as control:
        code, headers, problem = await call(
            control,
            "POST",
            "/v1/tasks/spec",
            "operator",
            data=b"{" + b" " * 4096 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert code == 413 and headers["Content-Type"] == PROBLEM and problem["status"] == 413
        code, _, problem = await call(control, "GET", "/v1/tasks/no-such.task", "viewer")
        assert code == 404 and problem["detail"] == "no task no-such.task"
        code, _, problem = await call(
            control,
            "POST",
            "/v1/tasks/spec",
            "operator",
            {"labelingJobs": [], "drive": DRIVE, "clip": CLIP},
        )
        assert code == 422 and problem["errors"][0]["loc"][-1] == "labelingJobs"
        code, _, problem = await call(
            control,
            "POST",
            "/v1/tasks/spec",
            "operator",
            {
                "labelingJobs": [
                    {
                        "jobName": "VOTVehicle",
                        "jobLevel": 1,
                        "inputConfig": {"clipS3Uri": f"s3://{s.names.bucket}/raw/c.mp4", "fps": 2},
                    },
                    {
                        "jobName": "AdjVOTLane",
                        "jobLevel": 2,
                        "inputConfig": {"chainFromJobName": "VOTVehicle"},
                    },
                ],
                "drive": DRIVE,
                "clip": CLIP,
            },
        )
        assert code == 422
        assert (
            problem["detail"]
            == "AdjVOTLane adjusts VOTLane, but the spec chains it from VOTVehicle"
        )
        # a valid spec publishes the ClipIngested the CLI would
        spec = {
            "labelingJobs": [
                {
                    "jobName": "VOTVehicle",
                    "jobLevel": 1,
                    "inputConfig": {"clipS3Uri": f"s3://{s.names.bucket}/raw/c.mp4", "fps": 2},
                },
            ],
            "drive": DRIVE,
            "clip": CLIP,
        }
        code, headers, created = await call(control, "POST", "/v1/tasks/spec", "operator", spec)
        assert code == 202 and headers["Location"] == f"/v1/clips/{created['clip_id']}", created
        (message,) = await get_messages(s, s.names.queue("ingest"), 1)
        event = decode_event(message.body)
        assert isinstance(event.payload, ClipIngested)
        assert created["task_id"] == f"{event.payload.clip_id}.{event.payload.workflows[0]}"
        code, _, job = await call(control, "GET", "/v1/jobs/VOTVehicle", "viewer")
        assert code == 200 and job["status"] == "InProgress"


async def test_the_original_spec_form_and_every_check_at_request_time(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    bucket = s.names.bucket
    store = S3Store(aws)
    content = b"the same clip"
    sha = hashlib.sha256(content).hexdigest()
    await store.put_bytes(bucket, "raw/original/clip.mp4", content)  # not through the rig
    await store.put_bytes(bucket, "raw/rig/clip.mp4", content, metadata={SHA_METADATA: sha})
    async with control_service(s, tmp_path) as control:
        # the original system's spec, verbatim (its field names, its job configuration)
        spec = json.loads(ORIGINAL_SPEC.read_text().replace("{bucket}", bucket))
        code, headers, created = await call(control, "POST", "/v1/tasks/spec", "operator", spec)
        assert code == 202, created
        assert created["clip_id"] == "original-batch-01"  # batchId
        assert headers["Location"] == "/v1/clips/original-batch-01"
        assert created["levels"] == [["VOTVehicle"], ["AdjVOTVehicle"]]
        assert any("taskTimeLimitInSeconds 604800 not applied" in w for w in created["warnings"])
        code, _, clip = await call(control, "GET", headers["Location"], "viewer")
        assert code == 200 and clip["status"] == "ingesting"

        # everything wrong that can be known now, each named
        wrong = json.loads(json.dumps(spec).replace("raw/original/", "raw/missing/"))
        del wrong["batchId"]
        level_one = {**wrong["labelingJobs"][0], "jobName": "AdjVOTVehicle"}
        wrong["labelingJobs"] = [wrong["labelingJobs"][0], wrong["labelingJobs"][0], level_one]
        code, _, problem = await call(control, "POST", "/v1/tasks/spec", "operator", wrong)
        assert code == 422, problem
        messages = [e["msg"] for e in problem["errors"]]
        assert "job VOTVehicle is named more than once" in messages, messages
        assert any(
            m == "AdjVOTVehicle adjusts VOTVehicle: an adjustment job cannot be at level 1"
            for m in messages
        ), messages
        assert f"s3://{bucket}/raw/missing/clip.mp4 does not exist" in messages, messages
        assert problem["detail"].startswith(f"{len(messages)} problems: ")
        foreign = {**spec, "batchId": "elsewhere"}
        foreign["labelingJobs"] = [
            {**spec["labelingJobs"][0], "inputConfig": {"clipS3Uri": "s3://other/raw/c.mp4"}}
        ]
        code, _, problem = await call(control, "POST", "/v1/tasks/spec", "operator", foreign)
        assert code == 422
        assert problem["detail"] == f"s3://other/raw/c.mp4 is not in the pipeline's bucket {bucket}"
        outside = f"s3://{bucket}/exports/c.mp4"  # ingest reads clips under raw/ only
        foreign["labelingJobs"][0]["inputConfig"] = {"clipS3Uri": outside}
        code, _, problem = await call(control, "POST", "/v1/tasks/spec", "operator", foreign)
        assert (
            code == 422
            and problem["detail"] == f"{outside} is not under raw/ (where ingest reads clips)"
        )

        # one clip, one id: the rig's (drive + content hash), whichever way it came in
        ids = set()
        for key in ("raw/original/clip.mp4", "raw/rig/clip.mp4"):
            body = {
                "workflow": "vehicles",
                "clipS3Uri": f"s3://{bucket}/{key}",
                "fps": 1,
                "drive": DRIVE,
                "clip": CLIP,
            }
            code, _, made = await call(control, "POST", "/v1/tasks", "operator", body)
            assert code == 202, made
            ids.add(made["clip_id"])
        assert ids == {derive_clip_id(DRIVE["drive_id"], sha)}
        audits = [json.loads(line) for line in control.log().splitlines() if '"audit"' in line]
        created_lines = [a for a in audits if a["action"].startswith("tasks.create")]
        # the audit line names the task created (the clip's URI when refused)
        assert created_lines[0]["target"] == created["task_id"]
        assert created_lines[1]["target"] == f"s3://{bucket}/raw/missing/clip.mp4"
        assert created_lines[-1]["target"] == f"{ids.pop()}.vehicles"


async def test_job_names_archive_and_allowed_methods(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    async with control_service(s, tmp_path) as control:
        # a name every derived name (Ground Truth job, its queue, topics) cannot hold: 422
        name = "a" + "-" * 61 + "b"
        body = {"name": name, "type": "vehicle"}
        code, _, problem = await call(control, "POST", "/v1/jobs", "operator", body)
        bound = max_job_name(s.namespace)
        assert code == 422 and f"at most {bound}" in problem["detail"], problem
        code, _, made = await call(
            control, "POST", "/v1/jobs", "operator", {"name": "Junk1", "type": "vehicle"}
        )
        assert code == 200 and made["created"], made
        assert RFC3339.fullmatch(made["job"]["created_at"])
        # archive: stopped, gone from the list and the API, still readable when asked for
        code, _, archived = await call(control, "DELETE", "/v1/jobs/Junk1", "operator")
        assert code == 200 and archived["status"] == "Stopped", archived
        assert RFC3339.fullmatch(archived["archived_at"])
        for method, path in (("DELETE", ""), ("GET", ""), ("POST", "/stop")):
            code, _, gone = await call(control, method, f"/v1/jobs/Junk1{path}", "operator")
            assert code == 404 and gone["detail"] == "no job named Junk1 (archived)"
        code, _, shown = await call(control, "GET", "/v1/jobs/Junk1?archived=true", "viewer")
        assert code == 200 and shown["archived_at"] == archived["archived_at"]
        _, _, listed = await call(control, "GET", "/v1/jobs", "viewer")
        assert "Junk1" not in [j["name"] for j in listed]
        _, _, every = await call(control, "GET", "/v1/jobs?archived=true", "viewer")
        assert "Junk1" in [j["name"] for j in every]
        code, _, problem = await call(control, "DELETE", "/v1/jobs/NoSuchJob", "operator")
        assert code == 404, problem

        # Allow names every method of a route, on OPTIONS and on 405
        code, headers, got = await call(control, "OPTIONS", "/v1/jobs")
        assert code == 204, (headers, got)
        assert headers["Allow"] == "GET, HEAD, OPTIONS, POST"
        code, headers, _ = await call(control, "PUT", "/v1/jobs/Junk1", "operator")
        assert code == 405 and headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"
        # closed sets of values are enums in the OpenAPI document
        _, _, document = await call(control, "GET", "/openapi.json")
        params = document["paths"]["/v1/dataset/clips"]["get"]["parameters"]
        weather = next(p for p in params if p["name"] == "weather")
        assert "rainy" in json.dumps(weather["schema"]) and "enum" in json.dumps(document)
