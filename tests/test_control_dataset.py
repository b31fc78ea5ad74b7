"""The control API's dataset routes against the real service (moto server, RabbitMQ): clips by
attribute a page at a time, exports written to S3 that the reference readers load, exports
that are neither lost nor doubled when a replica dies or stops."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from services.control.exports import ExportRunner
from shared.aws import AwsClients
from shared.dataset import export_job
from shared.dataset.export_store import DatasetExport, ExportStatus, ExportStore
from shared.dataset.exports import ExportFormat
from shared.dataset.index import IndexEntry
from shared.layout import parse_s3_uri
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.broker import wait_until
from tests.support.control import ControlProcess, control_service
from tests.support.dataset import complete_clips
from tests.test_control_api import PROBLEM, call

pytestmark = pytest.mark.integration

RAINY = ["c-rain-day-x", "c-rain-night-h", "c-rain-night-x"]
FAST = {"LAVA_CONTROL__MUTATIONS_PER_MINUTE": "1000", "LAVA_CONTROL__EXPORT_POLL_SECONDS": "0.2"}


async def pages(control: ControlProcess, query: str) -> list[list[str]]:
    """The clip ids of every page of a query, following the cursors."""
    found: list[list[str]] = []
    cursor = None
    while True:
        path = f"/v1/dataset/clips?{query}" + (f"&cursor={cursor}" if cursor else "")
        code, _, page = await call(control, "GET", path, "viewer")
        assert code == 200, page
        found.append([entry["clip_id"] for entry in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def flat(pages: list[list[str]]) -> list[str]:
    return [clip for page in pages for clip in page]


async def finished(control: ControlProcess, export_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        code, _, body = await call(control, "GET", f"/v1/dataset/exports/{export_id}", "viewer")
        assert code == 200, body
        seen.update(body)
        return body["status"] in ("completed", "failed")

    await wait_until(done, timeout=90, interval=0.2)
    return seen


async def download(aws: AwsClients, uris: list[str], into: Path) -> dict[str, Path]:
    """Each file under ``into`` at its path below the export's attempt folder."""
    store = S3Store(aws)
    local = {}
    for uri in uris:
        bucket, key = parse_s3_uri(uri)
        name = key.split("/", 3)[3]  # exports/<id>/attempt-<n>/<name>
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(await store.get_bytes(bucket, key))
        local[name] = path
    return local


async def test_clips_by_attribute_a_page_at_a_time(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    await complete_clips(aws, settings)
    async with control_service(settings, tmp_path, **FAST) as control:
        # through the weather index, by clip id, two a page
        assert await pages(control, "weather=rainy&limit=2") == [RAINY[:2], RAINY[2:]]
        # an index and filters on top; the source spelling of "construction" is understood
        assert flat(await pages(control, "weather=rainy&time_of_day=night&limit=1")) == [
            "c-rain-night-h",
            "c-rain-night-x",
        ]
        assert await pages(control, "scene=contruction") == [[]]
        # no indexed attribute: the whole index, filtered, a page at a time
        scanned = await pages(control, "traffic=stop-and-go&limit=1")
        assert sorted(flat(scanned)) == ["c-clear-night-x", "c-rain-night-x"]
        assert all(len(page) <= 1 for page in scanned)
        code, _, page = await call(
            control, "GET", "/v1/dataset/clips?clip_id=c-rain-day-x", "viewer"
        )
        (entry,) = page["items"]
        bucket = settings.names.bucket
        assert entry["labels_uri"] == f"s3://{bucket}/labels/c-rain-day-x.json"
        assert entry["summary_uri"] == f"s3://{bucket}/summary/c-rain-day-x.json"
        assert entry["weather"] == "rainy" and entry["frames"] == 3

        # the taxonomy decides: a value outside an attribute's enum is a 422 naming the
        # allowed ones (the OpenAPI document lists them), an unknown attribute a 400
        code, headers, problem = await call(
            control, "GET", "/v1/dataset/clips?weather=sunny", "viewer"
        )
        assert code == 422 and headers["Content-Type"] == PROBLEM, problem
        assert problem["errors"][0]["loc"] == ["query", "weather"]
        assert "'clear', 'overcast', 'partly cloudy'" in problem["errors"][0]["msg"]
        code, headers, problem = await call(
            control, "GET", "/v1/dataset/clips?colour=red", "viewer"
        )
        assert code == 400 and headers["Content-Type"] == PROBLEM, problem
        assert problem["detail"].startswith(
            "cannot query by 'colour' (attributes: clip_id, drive_id, route,"
        )
        # a cursor continues only the query it came from
        code, _, first = await call(
            control, "GET", "/v1/dataset/clips?weather=rainy&limit=1", "viewer"
        )
        cursor = first["next_cursor"]
        code, _, problem = await call(
            control, "GET", f"/v1/dataset/clips?weather=clear&cursor={cursor}", "viewer"
        )
        assert code == 422 and "cursor" in problem["detail"]
        code, _, problem = await call(control, "GET", "/v1/dataset/clips?cursor=bm9wZQ", "viewer")
        assert code == 422


async def test_exports_are_written_to_s3_in_each_format(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    import motmetrics as mm
    from pycocotools.coco import COCO
    from scalabel.label.io import load

    labels = {clip.clip_id: clip for clip in await complete_clips(aws, settings)}
    async with control_service(
        settings, tmp_path, LAVA_CONTROL__EXPORT_MAX_CLIPS="3", **FAST
    ) as control:
        request = {"format": "coco", "where": {"weather": "rainy"}}
        code, headers, accepted = await call(
            control, "POST", "/v1/dataset/exports", "operator", request
        )
        assert code == 202, accepted
        export_id = accepted["export_id"]
        assert headers["Location"] == f"/v1/dataset/exports/{export_id}"
        assert accepted["status"] in ("queued", "running", "completed")
        # a repeated request (a client retrying) is the same export, not a second one
        code, _, again = await call(control, "POST", "/v1/dataset/exports", "operator", request)
        assert code == 202 and again["export_id"] == export_id
        coco_export = await finished(control, export_id)
        assert coco_export["status"] == "completed", coco_export
        assert coco_export["attempt"] == 1 and coco_export["clips"] == 3
        assert coco_export["frames"] == 9
        prefix = f"s3://{settings.names.bucket}/exports/{export_id}/attempt-1/"
        assert coco_export["files"] == [prefix + "manifest.json", prefix + "annotations.json"]
        files = await download(aws, coco_export["files"], tmp_path / "coco")
        coco = COCO(str(files["annotations.json"]))
        assert sorted(v["name"] for v in coco.dataset["videos"]) == RAINY
        assert len(coco.getImgIds()) == 9
        assert (
            len(coco.getAnnIds())
            == coco_export["annotations"]
            == sum(
                1 for c in RAINY for f in labels[c].frames for o in f.objects if o.box is not None
            )
        )
        manifest = json.loads(files["manifest.json"].read_text())
        assert [c["clip_id"] for c in manifest["clips"]] == RAINY

        # named by the client: BDD100K of the night clips, read by scalabel's loader
        night = {"format": "bdd100k", "where": {"time_of_day": "night"}, "export_id": "night-1"}
        code, _, accepted = await call(control, "POST", "/v1/dataset/exports", "operator", night)
        assert code == 202 and accepted["export_id"] == "night-1"
        bdd_export = await finished(control, "night-1")
        assert bdd_export["status"] == "completed", bdd_export
        files = await download(aws, bdd_export["files"], tmp_path / "bdd")
        frames = load(str(files["labels.json"])).frames
        assert sorted({str(f.videoName) for f in frames}) == [
            "c-clear-night-x",
            "c-rain-night-h",
            "c-rain-night-x",
        ]
        assert sum(len(f.labels or []) for f in frames) == bdd_export["annotations"]
        # the same name for another request is a conflict
        code, _, problem = await call(
            control, "POST", "/v1/dataset/exports", "operator", {**night, "format": "mot"}
        )
        assert code == 409 and problem["detail"] == (
            "export night-1 exists with another format or filter"
        )

        # MOT sequences, read by motmetrics
        mot = {"format": "mot", "where": {"scene": "intersection", "traffic": "stop-and-go"}}
        code, _, accepted = await call(control, "POST", "/v1/dataset/exports", "operator", mot)
        mot_export = await finished(control, accepted["export_id"])
        assert mot_export["status"] == "completed", mot_export
        files = await download(aws, mot_export["files"], tmp_path / "mot")
        assert sorted(files) == [
            "c-clear-night-x/gt/gt.txt",
            "c-clear-night-x/seqinfo.ini",
            "c-rain-night-x/gt/gt.txt",
            "c-rain-night-x/seqinfo.ini",
            "manifest.json",
        ]
        gt = mm.io.loadtxt(str(files["c-rain-night-x/gt/gt.txt"]), fmt="mot15-2D")
        tracked = [
            o
            for f in labels["c-rain-night-x"].frames
            for o in f.objects
            if o.category in ("vehicle", "pedestrian")
        ]
        assert len(gt) == len(tracked)

        # more clips than an export may hold: failed, with the reason
        code, _, accepted = await call(
            control, "POST", "/v1/dataset/exports", "operator", {"format": "coco"}
        )
        too_many = await finished(control, accepted["export_id"])
        assert too_many["status"] == "failed" and too_many["files"] == []
        assert too_many["failure_reason"].startswith("4 clips match; an export holds at most 3")

        # wrong values are refused before anything is recorded; viewers may not export
        code, _, problem = await call(
            control,
            "POST",
            "/v1/dataset/exports",
            "operator",
            {"format": "coco", "where": {"weather": "sunny"}},
        )
        assert code == 422 and problem["errors"][0]["loc"] == ["body", "where", "weather"]
        code, _, _ = await call(control, "POST", "/v1/dataset/exports", "viewer", request)
        assert code == 403
        code, _, problem = await call(control, "GET", "/v1/dataset/exports/nope", "viewer")
        assert code == 404 and problem["detail"] == "no export nope"

        audits = [json.loads(line) for line in control.log().splitlines() if '"audit"' in line]
        exports = [a for a in audits if a["action"] == "dataset.export"]
        assert [(a["target"], a["outcome"], a.get("created")) for a in exports] == [
            (export_id, "ok", True),
            (export_id, "ok", False),
            ("night-1", "ok", True),
            ("night-1", "refused: export night-1 exists with another format or filter", None),
            (mot_export["export_id"], "ok", True),
            (too_many["export_id"], "ok", True),
        ]  # the wrong value was refused by the schema, before any handler
        assert all(a["who"] == "otto" for a in exports)


async def test_an_export_whose_replica_died_is_resumed_or_failed_with_the_reason(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    await complete_clips(aws, settings)
    store = ExportStore(aws, settings)
    past = time.time() - 3600

    async def died_running(export_id: str, times: int) -> None:
        """An export claimed ``times`` times by replicas that died (their leases ran out)."""
        await store.create(
            DatasetExport(
                export_id=export_id,
                format=ExportFormat.COCO,
                where={"scene": "highway"},
                status=ExportStatus.QUEUED,
                requested_by="token:otto",
                requested_at=past,
            )
        )
        for n in range(times):
            claimed = await store.claim(export_id, f"dead-{n}", past + n, 1.0, 3)
            assert claimed is not None and claimed.attempt == n + 1

    await died_running("resumed", 1)
    await died_running("given-up", 3)
    async with control_service(settings, tmp_path, **FAST) as control:
        resumed = await finished(control, "resumed")
        assert resumed["status"] == "completed" and resumed["attempt"] == 2
        assert all("/exports/resumed/attempt-2/" in uri for uri in resumed["files"])
        assert resumed["clips"] == 1
        given_up = await finished(control, "given-up")
        assert given_up["status"] == "failed" and given_up["files"] == []
        assert given_up["failure_reason"] == (
            "interrupted 3 times (its control replica stopped before it finished each time); "
            "request it again to retry"
        )
    # the attempt that died cannot overwrite the outcome of the one that finished
    assert not await store.complete("resumed", "dead-0", 1, time.time(), [], 0, 0, 0)
    assert not await store.fail("resumed", "dead-0", 1, time.time(), "late")
    final = await store.get("resumed")
    assert final is not None and final.status is ExportStatus.COMPLETED


async def test_a_stopping_replica_hands_its_export_to_another(
    aws: AwsClients, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica one stops (SIGTERM) mid-export: the export is queued again at no cost in
    attempts, and replica two runs it to completion; nothing is written twice."""
    await complete_clips(aws, settings)
    store = ExportStore(aws, settings)
    await store.create(
        DatasetExport(
            export_id="handed-over",
            format=ExportFormat.COCO,
            where={"weather": "clear"},
            status=ExportStatus.QUEUED,
            requested_by="token:otto",
            requested_at=time.time(),
        )
    )
    reading = asyncio.Event()
    real = export_job.read_labels

    async def slow_first_time(store: S3Store, entry: IndexEntry) -> bytes:
        if not reading.is_set():
            reading.set()
            await asyncio.Event().wait()  # held until cancelled
        return await real(store, entry)

    monkeypatch.setattr(export_job, "read_labels", slow_first_time)
    one = ExportRunner(aws, settings, now=time.time, replica="one")
    one.submit("handed-over")
    await asyncio.wait_for(reading.wait(), 30)
    running = await store.get("handed-over")
    assert running is not None and (running.status, running.owner) == (ExportStatus.RUNNING, "one")
    await one.stop()
    handed = await store.get("handed-over")
    assert handed is not None and handed.status is ExportStatus.QUEUED and handed.attempt == 0
    assert handed.owner is None

    two = ExportRunner(aws, settings, now=time.time, replica="two")
    await two.sweep()

    async def completed() -> bool:
        found = await store.get("handed-over")
        return found is not None and found.status is ExportStatus.COMPLETED

    await wait_until(completed, timeout=30)
    await two.stop()
    done = await store.get("handed-over")
    assert done is not None and done.owner == "two" and done.attempt == 1 and done.clips == 1
    s3 = await aws.s3()
    listed = await s3.list_objects_v2(Bucket=settings.names.bucket, Prefix="exports/handed-over/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "exports/handed-over/attempt-1/annotations.json",
        "exports/handed-over/attempt-1/manifest.json",
    ]
