"""Buckets that are ours, and secrets that stay secret (moto, the CLI, the logs)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from botocore.exceptions import ClientError

from shared.aws import AwsClients
from shared.logging import configure_logging
from shared.resources import BucketNotOurs, provision
from shared.runtime import ServiceRuntime
from shared.settings import LOCAL_ACCOUNT, Settings, load_settings
from shared.storage import S3Store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55word"
# S3 operations without an ExpectedBucketOwner parameter (account-level, not bucket-level).
NO_OWNER_PARAMETER = {"CreateBucket", "ListBuckets"}


async def test_every_s3_call_names_the_account_that_must_own_the_bucket(
    settings: Settings, tmp_path: Path
) -> None:
    calls: list[tuple[str, str | None]] = []

    def record(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        calls.append((model.name, params["headers"].get("x-amz-expected-bucket-owner")))

    async with AwsClients(settings) as aws:
        s3 = await aws.s3()
        s3.meta.events.register("before-call.s3", record)
        await provision(aws, settings.names)  # head_bucket, create_bucket
        store, bucket = S3Store(aws), settings.names.bucket
        await store.put_json(bucket, "raw/x.json", {"a": 1})
        assert await store.get_bytes(bucket, "raw/x.json", max_bytes=100) == b'{"a": 1}'
        assert await store.head(bucket, "raw/x.json") is not None
        await store.download(bucket, "raw/x.json", tmp_path / "x")
        await s3.list_objects_v2(Bucket=bucket)
        await s3.delete_object(Bucket=bucket, Key="raw/x.json")
    ops = {op for op, _ in calls}
    assert {"HeadBucket", "PutObject", "GetObject", "HeadObject", "DeleteObject"} <= ops
    for op, owner in calls:
        if op not in NO_OWNER_PARAMETER:
            assert owner == LOCAL_ACCOUNT, (op, owner)  # moto accepts the parameter


async def test_a_bucket_answering_403_is_not_ours_and_is_never_written(
    settings: Settings,
) -> None:
    async with AwsClients(settings) as aws:
        s3 = await aws.s3()
        created: list[str] = []

        async def forbidden(**kwargs: Any) -> None:
            # What S3 answers for a bucket another account owns (moto does not model owners).
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

        async def create(**kwargs: Any) -> None:
            created.append(kwargs["Bucket"])

        s3.head_bucket = forbidden  # type: ignore[method-assign,assignment]
        s3.create_bucket = create  # type: ignore[method-assign,assignment]
        with pytest.raises(BucketNotOurs, match="not ours"):
            await provision(aws, settings.names)
        assert created == []


def test_the_bucket_is_a_setting_named_by_account_and_region() -> None:
    local = load_settings(namespace="prod", aws__endpoint_url="http://127.0.0.1:4566")
    assert local.names.bucket == f"prod-{LOCAL_ACCOUNT}-us-east-1"
    real = load_settings(namespace="prod", aws__account_id="210987654321", aws__region="eu-west-1")
    assert real.names.bucket == "prod-210987654321-eu-west-1"
    assert load_settings(
        aws__bucket="my-own-bucket", aws__account_id="210987654321"
    ).names.bucket == ("my-own-bucket")
    with pytest.raises(ValueError, match="12 digits"):
        load_settings(aws__account_id="12345")
    with pytest.raises(ValueError, match="bucket name"):
        load_settings(aws__bucket="Bad_Bucket")

    async def s3_without_account() -> None:
        async with AwsClients(load_settings(namespace="prod")) as aws:
            await aws.s3()

    with pytest.raises(ValueError, match="LAVA_AWS__ACCOUNT_ID"):
        asyncio.run(s3_without_account())


def _lava(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "lava", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_credentials_are_never_printed(tmp_path: Path) -> None:
    url = f"amqp://lava-rig:{SECRET}@127.0.0.1:5672/"
    settings = load_settings(broker__amqp_url=url)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    shown = _lava("config", "show", "--json", LAVA_BROKER__AMQP_URL=url)
    assert shown.returncode == 0 and SECRET not in shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["broker"]["amqp_url"] == "**********"
    table = _lava("config", "show", LAVA_BROKER__AMQP_URL=url)
    assert table.returncode == 0 and SECRET not in table.stdout + table.stderr
    status = _lava(
        "stack",
        "status",
        "--port",
        "9",
        LAVA_BROKER__AMQP_URL=url,
        LAVA_STATE_DIR=str(tmp_path),
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    assert "lava-rig:***@" in status.stdout
    assert SECRET not in status.stdout + status.stderr


async def test_logs_mask_passwords_and_health_binds_to_loopback(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(settings.replace(log__format="json"), "probe")
    try:
        structlog.get_logger("probe").error(
            "broker unavailable", error=f"cannot reach amqp://lava-rig:{SECRET}@broker:5672/"
        )
        logging.getLogger("aio_pika").error("lost %s", f"amqp://lava-rig:{SECRET}@broker:5672/")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    runtime = ServiceRuntime("probe", settings, uses_bus=False)
    await runtime.start()
    try:
        assert runtime._web_runner is not None
        (address,) = runtime._web_runner.addresses
        assert address[0] == "127.0.0.1"
    finally:
        await runtime.shutdown()
    logged = capsys.readouterr().err
    assert "lava-rig:***@broker" in logged and SECRET not in logged


def test_no_secret_in_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    patterns = {
        "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
        "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        # URLs with a password that is not the local default or an obvious placeholder
        "URL password": re.compile(
            r"[a-z]+://[\w.-]+:"
            r"(?!(?i:guest|password|change_?me|placeholder|example|secret)@|\*\*\*@|<|\$\{|\{)"
            r"[^@\s/\"']+@"
        ),
    }
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".mp4", ".jpg", ".png"}:
            continue
        text = path.read_text(errors="ignore")
        for what, pattern in patterns.items():
            for match in pattern.finditer(text):
                found.append(f"{name}: {what}: {match.group(0)[:40]}")
    assert found == []
