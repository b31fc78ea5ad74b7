"""The pipeline with Label Studio as the labeling backend: a real Label Studio server (its own
venv, ``scripts/labelstudio.sh``), RabbitMQ, a moto server, the four services and a simulated
annotator working through Label Studio's API, every part a real process."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lava.local_pipeline import LocalPipeline
from shared.aws import AwsClients
from shared.dynamo import items
from shared.labeling.jobs import JobRegistry
from shared.labeling.labelstudio.backend import WEBHOOK_SECRET_HEADER, project_id
from shared.labeling.labelstudio.client import KEY_FIELD, LabelStudioClient
from shared.labeling.labelstudio.imports import Outcome, TaskImporter
from shared.labeling.labelstudio.server import installed
from shared.labeling.streaming_job import StreamingJob
from shared.resources import LABELSTUDIO_IMPORTS, TASKS
from shared.seal import SEAL_FIELD
from shared.settings import Settings
from tests.support.e2e import frame_index, labels_of, make_clips, pipeline, upload, wait_for_clips
from tests.support.mot import mot_scores

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(
        not installed(), reason="Label Studio is not installed: run scripts/labelstudio.sh"
    ),
]


def client(settings: Settings) -> LabelStudioClient:
    return LabelStudioClient(
        settings.labelstudio.url, settings.labelstudio.token.get_secret_value()
    )


async def ls_jobs(settings: Settings) -> list[StreamingJob]:
    async with AwsClients(settings) as aws:
        return [j for j in await JobRegistry(aws, settings).list() if j.backend == "labelstudio"]


async def tasks_by_key(settings: Settings) -> dict[str, Counter[str]]:
    """Per job: how many Label Studio tasks carry each dedup key."""
    out: dict[str, Counter[str]] = {}
    async with client(settings) as ls:
        for job in await ls_jobs(settings):
            tasks = await ls.tasks(project_id(job), [])
            out[job.name] = Counter(str(t["data"][KEY_FIELD]) for t in tasks)
    return out


async def annotated_count(settings: Settings, job: StreamingJob) -> int:
    async with client(settings) as ls:
        return len(await ls.labeled_since(project_id(job), None))


async def scan(settings: Settings, table: str, field: str, value: str) -> list[dict[str, Any]]:
    """The items of one of the run's tables whose ``field`` is ``value``."""
    async with AwsClients(settings) as aws:
        db = await aws.dynamodb()
        found = items(db, "scan", TableName=settings.names.table(table))
        return [item async for item in found if item.get(field) == value]


async def data_objects(settings: Settings) -> list[dict[str, Any]]:
    return await scan(settings, TASKS.name, "kind", "obj")


async def import_claims(settings: Settings) -> list[dict[str, Any]]:
    """The Label Studio import claims marked imported (one per job and key)."""
    return await scan(settings, LABELSTUDIO_IMPORTS.name, "state", "imported")


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def duplicate_imports(run: LocalPipeline) -> None:
    """Two importers at once, and again, with one input message: one task for the key."""
    settings = run.settings
    assert settings is not None
    job = next(j for j in await ls_jobs(settings) if j.name == "VOTVehicle")
    async with client(settings) as ls:
        existing = await ls.tasks(project_id(job), [])
    assert existing, "the level-1 project has tasks by now"
    data = existing[0]["data"]
    message = {
        "source-ref": data["source_ref"],
        "dataset-objectid-attribute-name": "lava-key",
        "lava-key": data[KEY_FIELD],
    }
    async with AwsClients(settings) as aws, client(settings) as ls:
        importers = [TaskImporter(aws, settings, ls) for _ in range(2)]
        outcomes = await asyncio.gather(*(i.import_message(job, message) for i in importers))
        again = await importers[0].import_message(job, message)
        # the same message through the job's input topic, as a dispatcher re-send would
        sns = await aws.sns()
        await sns.publish(TopicArn=job.input_topic_arn, Message=json.dumps(message))
    assert {o.outcome for o in outcomes} <= {Outcome.DUPLICATE, Outcome.BUSY}
    assert again.outcome is Outcome.DUPLICATE


def drop_pending(listening: socket.socket) -> int:
    """Accept and close every connection queued on a listening socket; how many there were."""
    dropped = 0
    listening.setblocking(False)
    try:
        while True:
            try:
                connection, _ = listening.accept()
            except BlockingIOError:
                return dropped
            connection.close()
            dropped += 1
    finally:
        listening.setblocking(True)


async def forged_webhooks_are_refused(settings: Settings) -> None:
    url = settings.labelstudio.webhook_url
    body = {"action": "ANNOTATION_CREATED", "task": {"id": 1}, "project": {"id": 1}}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {WEBHOOK_SECRET_HEADER: "guess"}):
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 401


async def test_clips_through_both_levels_on_a_real_label_studio_server(
    tmp_path: Path, rabbitmq: str
) -> None:
    clips = make_clips(tmp_path, 2, seconds=2)
    async with pipeline(
        tmp_path,
        backend="labelstudio",
        extra_env={
            # the 7-day availability lifetime becomes 30 s: the first tasks expire while
            # nobody works, the re-created ones are annotated in time
            "LAVA_LABELSTUDIO__TIME_SCALE": "5e-5",
            "LAVA_DISPATCH__LEVEL_MAX_RETRIGGERS": "30",
        },
        expire_share=1.0,  # every first-attempt level-1 task is left alone: it expires
        box_jitter=6.0,  # level-1 noise the review corrects
        worker_rate=50.0,
    ) as run:
        settings = run.settings
        assert settings is not None
        await forged_webhooks_are_refused(settings)
        ids = await upload(settings, clips, ["vehicles"], fps=2)
        level1 = next(j for j in await ls_jobs(settings) if j.name == "VOTVehicle")
        review = next(j for j in await ls_jobs(settings) if j.name == "AdjVOTVehicle")
        run.kill("ls-annotator")  # nobody works until the listener is down (below)

        # Nobody takes the first tasks: they expire and are re-created under new keys.
        async def rekeyed() -> bool:
            return sum((await tasks_by_key(settings))[level1.name].values()) == 2 * len(ids)

        await wait_until(rekeyed, 120, "expired level-1 tasks re-created under new keys")
        await duplicate_imports(run)

        # A listener that is down misses webhooks (Label Studio tries once); the
        # reconciliation after its restart finds the annotations made meanwhile. The run
        # keeps the webhook socket listening across the restart (the URL stays right), so
        # the kernel would queue Label Studio's requests for the next listener: the test
        # takes them off the queue unanswered, as a listener down for longer would miss them.
        run.kill("listener")
        await run.restart("ls-annotator")

        async def all_annotated() -> bool:
            return await annotated_count(settings, level1) == len(ids)

        await wait_until(all_annotated, 60, "level-1 annotations while the listener is down")
        held = run.webhook_socket
        assert held is not None
        missed = 0

        async def every_webhook_missed() -> bool:
            nonlocal missed
            missed += drop_pending(held)
            return missed >= len(ids)  # one ANNOTATION_CREATED per level-1 task

        await wait_until(every_webhook_missed, 60, "Label Studio's level-1 webhooks")
        await run.restart("listener")

        snap = await wait_for_clips(settings, ids, timeout=240)
        assert snap.failures() == [], snap.failures()
        assert {snap.clips[c].status for c in ids} == {"completed"}

        for clip, clip_id in zip(clips, ids, strict=True):
            labels = await labels_of(settings, clip_id)
            index = await frame_index(settings, clip_id, 2)
            mota, idf1 = mot_scores(labels, clip.labels, index, "vehicle")
            assert mota >= 0.99 and idf1 >= 0.99, (clip_id, mota, idf1)

        counts = await tasks_by_key(settings)
        assert counts[level1.name] and counts[review.name]
        for job_name, per_key in counts.items():
            assert set(per_key.values()) <= {1}, (job_name, per_key)

        objects = await data_objects(settings)
        for obj in objects:
            keys = obj["keys"]
            if obj["job"] == level1.name:
                # every first key expired (nobody took it) and was replaced exactly once
                assert int(obj["expirations"]) == 1 and len(keys) == 2, obj
                assert obj["expired_keys"] == keys[:1]
            else:
                assert int(obj["expirations"]) == 0 and len(keys) == 1, obj
        assert review.name in {o["job"] for o in objects}
        # the local pipeline seals its inputs: every import claim kept its input's seal (that
        # a kept seal spares the lookup: tests/security/test_labelstudio_claims.py)
        claims = await import_claims(settings)
        assert claims and all(c.get(SEAL_FIELD, "").startswith("v1.") for c in claims), claims
    log = (run.run_dir / "listener.log").read_text()
    # level 1 was annotated while the listener was down: only the reconciliation can have
    # published it; level 2 came through the webhooks (the fast path; the reconciliation may
    # still win a race for one, which the derived event ids make harmless)
    assert '"via": "reconciliation"' in log
    assert '"event": "webhook accepted"' in log
