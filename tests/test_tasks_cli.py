"""`lava tasks list/show/retry/create --spec` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devstack.testing.events import expired, frames_ready
from shared.aws import AwsClients
from shared.bus import Bus
from shared.clock import FakeClock
from shared.events import ClipIngested, decode_event
from shared.settings import Settings
from shared.storage import S3Store
from shared.tasks.model import TaskStatus
from tests.support.broker import get_messages
from tests.support.cli import field_values, table_rows
from tests.support.dispatch import (
    Recorder,
    create_jobs,
    dispatch_settings,
    inputs,
    make,
    task_state,
)

pytestmark = pytest.mark.integration


def lava(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        LAVA_NAMESPACE=settings.namespace,
        AWS_ENDPOINT_URL=settings.aws.endpoint_url or "",
        LAVA_BROKER__AMQP_URL=settings.broker.amqp_url.get_secret_value(),
    )
    return subprocess.run(
        [sys.executable, "-m", "lava", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def test_list_show_and_retry_a_failed_task(aws: AwsClients, settings: Settings) -> None:
    s = dispatch_settings(settings, dispatch__max_expirations=0)
    jobs = await create_jobs(aws, s)
    # the CLI runs on the wall clock: start the fake one there
    clock = FakeClock(datetime.now(UTC))
    dispatcher = make(aws, s, clock, Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    key = sent["lava-dedup-id"]
    await dispatcher.on_task_expired(expired("clip-1.vehicles", jobs["VOTVehicle"], key))
    assert (await task_state(dispatcher, "clip-1.vehicles")).status is TaskStatus.FAILED

    listed = lava(s, "tasks", "list", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    (row,) = table_rows(listed.stdout, "TASK")
    assert row["TASK"] == "clip-1.vehicles" and row["STATUS"] == "failed"
    assert row["LEVEL"] == "1/2" and "expired 1 times" in row["REASON"]
    (listed_json,) = json.loads(lava(s, "tasks", "list", "--status", "failed", "--json").stdout)
    assert listed_json["task_id"] == "clip-1.vehicles" and listed_json["status"] == "failed"
    assert json.loads(lava(s, "tasks", "list", "--status", "stopped", "--json").stdout) == []

    status = lava(s, "status")
    assert status.returncode == 0, status.stderr
    assert "1 task(s)" in status.stdout and "expirations 1" in status.stdout
    assert table_rows(status.stdout, "STATUS") == [
        {"STATUS": "active", "LEVEL": "1", "TASKS": "0"},  # levels passed through stay listed
        {"STATUS": "failed", "LEVEL": "1", "TASKS": "1"},
    ]
    (failure,) = table_rows(status.stdout, "TASK")
    assert "failures: 1" in status.stdout and "expired 1 times" in failure["REASON"]
    status_json = json.loads(lava(s, "status", "--json").stdout)
    assert status_json["tasks_by_status"] == {"active": {"1": 0}, "failed": {"1": 1}}
    assert status_json["expirations"] == 1 and len(status_json["failures"]) == 1

    shown = lava(s, "tasks", "show", "clip-1.vehicles")
    assert shown.returncode == 0, shown.stderr
    header = field_values(shown.stdout)
    assert header["task"] == "clip-1.vehicles"
    assert header["status"].startswith("failed: VOTVehicle: data object expired")
    assert header["level 1 (current)"] == "VOTVehicle"
    (obj,) = table_rows(shown.stdout, "LEVEL")
    assert obj["JOB"] == "VOTVehicle" and obj["SENDS"] == "1" and obj["EXPIRATIONS"] == "1"
    keys = table_rows(shown.stdout.split("dedup keys", 1)[1], "LEVEL")
    assert keys == [{"LEVEL": "1", "JOB": "VOTVehicle", "KEY": key, "STATE": "expired"}]
    history = table_rows(shown.stdout, "AT")
    assert history and history[-1]["EVENT"] == "failed", history
    shown_json = json.loads(lava(s, "tasks", "show", "clip-1.vehicles", "--json").stdout)
    assert set(shown_json) == {"task", "objects", "late_outputs"}
    assert shown_json["objects"][0]["expired_keys"] == [key]
    missing = lava(s, "tasks", "show", "clip-9.vehicles", "--json")
    assert missing.returncode == 1 and missing.stdout == ""
    assert len(missing.stderr.splitlines()) == 1 and "no task clip-9.vehicles" in missing.stderr

    retried = lava(s, "tasks", "retry", "clip-1.vehicles")
    assert retried.returncode == 0, retried.stderr
    assert "VOTVehicle: new key" in retried.stdout  # its key expired: a new one
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.ACTIVE
    await clock.advance(120)
    report = await dispatcher.sweep()
    assert report.first_sends + report.resent == 1
    (again,) = await inputs(aws, jobs["VOTVehicle"])
    assert again["lava-dedup-id"] != key and again["lava-dedup-id"].split("/")[1].startswith("2-")
    assert lava(s, "tasks", "retry", "clip-1.vehicles").returncode == 1  # not failed any more


async def test_create_from_the_original_spec(
    aws: AwsClients, settings: Settings, bus: Bus, tmp_path: Path
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    spec = {
        "labelingJobs": [
            {
                "jobName": "VOTVehicle",
                "jobLevel": 1,
                "inputConfig": {"clipS3Uri": f"s3://{s.names.bucket}/raw/c.mp4", "fps": 2},
            },
            {
                "jobName": "AdjVOTVehicle",
                "jobLevel": 2,
                "inputConfig": {"chainFromJobName": "VOTVehicle"},
            },
        ]
    }
    await S3Store(aws).put_bytes(s.names.bucket, "raw/c.mp4", b"a clip")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    made = lava(
        s, "tasks", "create", "--spec", str(path), "--drive-id", "d9", "--traffic-density", "low"
    )
    assert made.returncode == 0, made.stderr
    task_id = made.stdout.split("\t")[0]
    (message,) = await get_messages(s, s.names.queue("ingest"), 1)
    event = decode_event(message.body)
    assert isinstance(event.payload, ClipIngested)
    workflow = event.payload.workflows[0]
    assert task_id == f"{event.payload.clip_id}.{workflow}"
    assert event.payload.fps == 2
    # the dispatcher resolves the ad-hoc workflow
    dispatcher = make(aws, s, FakeClock(), Recorder())
    assert await dispatcher.workflows.levels(workflow) == [["VOTVehicle"], ["AdjVOTVehicle"]]

    bad = dict(spec)
    bad["labelingJobs"] = [
        spec["labelingJobs"][0],
        {**spec["labelingJobs"][1], "jobName": "AdjVOTLane"},
    ]
    path.write_text(json.dumps(bad))
    refused = lava(
        s, "tasks", "create", "--spec", str(path), "--drive-id", "d9", "--traffic-density", "low"
    )
    assert refused.returncode == 1
    assert "AdjVOTLane adjusts VOTLane, but the spec chains it from VOTVehicle" in refused.stderr


async def test_stop_a_task_from_the_command_line(aws: AwsClients, settings: Settings) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(datetime.now(UTC)), Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    stopped = lava(s, "tasks", "stop", "clip-1.vehicles", "--reason", "wrong clip")
    assert stopped.returncode == 0, stopped.stderr
    assert "clip-1.vehicles: stopped (1 waiting data object(s) stopped)" in stopped.stdout
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.STOPPED and (task.stopped_by or "").startswith("cli:")
    again = lava(s, "tasks", "stop", "clip-1.vehicles")
    assert again.returncode == 0 and "was stopped already" in again.stdout
    missing = lava(s, "tasks", "stop", "clip-9.vehicles")
    assert missing.returncode == 1 and "no task clip-9.vehicles" in missing.stderr
