"""Where label quality is seen and how gold copies are made: GET /v1/quality (who sees worker
ids), `lava quality`, the dispatcher's gold mixing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.dispatcher.gold_mix import GoldMixer
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.events import ClipFrames, FramesReady
from shared.quality.agreement import Agreement, ClipAgreement
from shared.quality.gold_clips import GoldClip
from shared.quality.records import LevelWork, QualityRecord, QualityRecords
from shared.quality.workers import WorkerIdentity, pseudonym
from shared.settings import Settings
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from tests.support.cli import table_rows
from tests.support.control import control_service
from tests.test_control_api import call
from tests.test_tasks_cli import lava

DRIVE = DriveAttributes(drive_id="d1", weather="clear", time_of_day="daytime", route="A1")
CLIP = ClipAttributes(scene="tunnel", traffic="undefined", traffic_density="low")
FRAMES = ClipFrames(
    sequence_uri="s3://bk/clips/c1/2fps/seq.json",
    manifest_uri="s3://bk/clips/c1/2fps/input.manifest",
    frame_count=4,
    width=320,
    height=180,
    fps=2,
)


def _frames_ready(task: str, clip: str = "c1") -> FramesReady:
    return FramesReady(
        task_id=task,
        clip_id=clip,
        workflow="vehicles",
        clip_workflows=["vehicles"],
        drive=DRIVE,
        clip=CLIP,
        frames=FRAMES,
    )


class OneGold:
    def __init__(self) -> None:
        self.reads = 0

    async def of(self, workflow: str) -> list[GoldClip]:
        self.reads += 1
        return [
            GoldClip(
                clip_id="g1",
                workflow=workflow,
                truth_uri="s3://bk/sidecars/g1.lava.json",
                truth_kind="sidecar",
                frames=FRAMES,
                drive=DRIVE,
                clip=CLIP,
                added_at=datetime(2026, 12, 1, tzinfo=UTC),
            )
        ]


async def test_gold_copies_come_at_the_rate_and_the_same_for_a_redelivery() -> None:
    source = OneGold()
    mixer = GoldMixer(source, 0.2, 60, FakeClock())
    copies = [await mixer.copy_after(_frames_ready(f"c{n}.vehicles")) for n in range(400)]
    made = [c for c in copies if c is not None]
    share = len(made) / (len(made) + 400)
    assert 0.15 < share < 0.25  # gold is about 20 % of the stream
    again = await mixer.copy_after(_frames_ready("c3.vehicles"))
    assert again == copies[3]  # a redelivered FramesReady makes the same copy
    assert source.reads == 1  # the gold list is kept for gold_refresh_seconds
    copy = made[0]
    assert copy.gold is not None and copy.gold.clip_id == "g1"
    assert "gold" not in copy.task_id and copy.clip_id.startswith("d1-")  # nothing marks it
    assert len({c.task_id for c in made}) == len(made)  # each copy its own task (fresh keys)
    assert await mixer.copy_after(copy) is None  # a copy is never followed by a copy


async def test_no_copy_of_a_gold_clip_after_itself_or_without_gold() -> None:
    class NoGold:
        async def of(self, workflow: str) -> list[GoldClip]:
            return []

    mixer = GoldMixer(NoGold(), 0.5, 60, FakeClock())
    assert all([await mixer.copy_after(_frames_ready(f"t{n}")) is None for n in range(20)])
    own = GoldMixer(OneGold(), 0.5, 60, FakeClock())
    assert all([await own.copy_after(_frames_ready(f"t{n}", "g1")) is None for n in range(20)])


def _record(task: str) -> QualityRecord:
    worker = WorkerIdentity(backend="groundtruth", worker_id="a12b3cdefg4h5i67", sub="s-1")
    return QualityRecord(
        task_id=task,
        clip_id="c1",
        workflow="vehicles",
        finalized_at=datetime.now(UTC),
        levels=[
            LevelWork(job="VOTVehicle", level=1, worker=worker),
            LevelWork(job="AdjVOTVehicle", level=2, adjusts="VOTVehicle"),
        ],
        agreement=[
            ClipAgreement(
                job="VOTVehicle",
                adjusted_by="AdjVOTVehicle",
                per_class={"vehicle": Agreement(objects=4, kept=3, moved=1, boxes_compared=4)},
            )
        ],
    )


@pytest.mark.integration
async def test_viewers_see_pseudonyms_and_only_operators_worker_ids(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    await QualityRecords(aws, settings.names.bucket).put(_record("c1.vehicles"))
    key = "k-test"
    async with control_service(settings, tmp_path, LAVA_QUALITY__PSEUDONYM_KEY=key) as control:
        code, _, found = await call(control, "GET", "/v1/quality", "viewer")
        assert code == 200, found
        names = {row["name"] for row in found["workers"]}
        assert names == {pseudonym("a12b3cdefg4h5i67", key), "(unknown)"}
        (vehicle,) = found["classes"]
        assert vehicle["agreement"]["kept"]["value"] == 0.75
        assert vehicle["agreement"]["kept"]["n"] == 4
        code, _, refused = await call(control, "GET", "/v1/quality?reveal=true", "viewer")
        assert code == 403, refused
        code, _, revealed = await call(control, "GET", "/v1/quality?reveal=true", "operator")
        assert code == 200 and "a12b3cdefg4h5i67" in {r["name"] for r in revealed["workers"]}
        code, _, backwards = await call(
            control,
            "GET",
            "/v1/quality?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "viewer",
        )
        assert code == 422, backwards


@pytest.mark.integration
async def test_lava_quality_prints_tables_and_json_and_refuses_an_unknown_gold_clip(
    aws: AwsClients, settings: Settings
) -> None:
    await QualityRecords(aws, settings.names.bucket).put(_record("c1.vehicles"))
    shown = lava(settings, "quality")
    assert shown.returncode == 0, shown.stderr
    # the first table with rows: what the review changed, per level-1 worker
    (row,) = table_rows(shown.stdout, "NAME")
    assert row["NAME"].startswith("w-") and row["OBJECTS"] == "4"
    assert row["KEPT"].startswith("0.75 [") and row["KEPT"].endswith("n=4")
    assert "a12b3cdefg4h5i67" not in shown.stdout  # pseudonyms unless --reveal
    revealed = json.loads(lava(settings, "quality", "--json", "--reveal").stdout)
    assert "a12b3cdefg4h5i67" in {w["name"] for w in revealed["workers"]}
    refused = lava(settings, "quality", "gold", "add", "nope", "--workflow", "vehicles")
    assert refused.returncode == 1 and "has no task in workflow vehicles" in refused.stderr
