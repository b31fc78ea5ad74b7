"""The dataset: index queries, exports read back by the reference readers, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.aws import AwsClients
from shared.dataset.exports import (
    ExportFormat,
    mot_files,
    render,
    to_bdd100k,
    to_coco,
    write_mot,
)
from shared.dataset.index import DatasetIndex, QueryError, parse_where
from shared.settings import Settings
from shared.taxonomy.records import ClipLabels, Vehicle
from tests.support.cli import table_rows
from tests.support.dataset import complete_clips

pytestmark = pytest.mark.integration


@pytest.fixture
async def dataset(aws: AwsClients, settings: Settings) -> list[ClipLabels]:
    return await complete_clips(aws, settings)


async def test_queries(aws: AwsClients, settings: Settings, dataset: Any) -> None:
    index = DatasetIndex(aws, settings)

    async def ids(*conditions: str) -> list[str]:
        return [e.clip_id for e in await index.query(parse_where(list(conditions)))]

    assert await ids("weather=rainy") == ["c-rain-day-x", "c-rain-night-h", "c-rain-night-x"]
    assert await ids("weather=rainy", "time_of_day=night", "scene=intersection") == [
        "c-rain-night-x"
    ]
    assert await ids("traffic=stop-and-go") == ["c-clear-night-x", "c-rain-night-x"]  # scanned
    assert await ids("scene=contruction") == []  # the source spelling is understood
    assert len(await ids()) == 4
    entry = (await index.query({"scene": "highway"}))[0]
    assert entry.objects_per_class == {"lane": 3, "pedestrian": 2, "traffic_sign": 1, "vehicle": 5}
    assert entry.tracks_per_class == {"lane": 1, "pedestrian": 1, "vehicle": 2}
    with pytest.raises(QueryError, match="'sunny' is not a weather"):
        parse_where(["weather=sunny"])
    with pytest.raises(QueryError, match="cannot query by 'colour'"):
        parse_where(["colour=red"])


def _boxes(clip: ClipLabels, with_lanes: bool = False) -> list[Any]:
    return [
        (f.frame_no, o) for f in clip.frames for o in f.objects if o.box is not None or with_lanes
    ]


async def test_coco_export_loads_with_pycocotools(
    dataset: list[ClipLabels], tmp_path: Path
) -> None:
    from pycocotools.coco import COCO

    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(to_coco(dataset)))
    coco = COCO(str(path))
    assert len(coco.dataset["videos"]) == 4
    assert len(coco.getImgIds()) == 12
    source = [b for clip in dataset for b in _boxes(clip)]
    assert len(coco.getAnnIds()) == len(source)
    cats = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    first = dataset[0]
    image = next(
        i for i in coco.dataset["images"] if i["file_name"] == f"{first.clip_id}/000000.jpg"
    )
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    expected = [o for o in first.frames[0].objects if o.box is not None]
    assert sorted(a["bbox"] for a in anns) == sorted(
        [o.box.left, o.box.top, o.box.width, o.box.height] for o in expected
    )
    cars = coco.loadAnns(coco.getAnnIds(catIds=[cats["car"]]))
    by_video: dict[int, set[int]] = {}
    for ann in cars:
        video = coco.imgs[ann["image_id"]]["video_id"]
        by_video.setdefault(video, set()).add(ann["instance_id"])
    assert all(len(instances) == 2 for instances in by_video.values())  # v1, v2 per clip


async def test_mot_export_loads_with_motmetrics(dataset: list[ClipLabels], tmp_path: Path) -> None:
    import motmetrics as mm

    write_mot(dataset, tmp_path)
    clip = dataset[0]
    gt = mm.io.loadtxt(str(tmp_path / clip.clip_id / "gt" / "gt.txt"), fmt="mot15-2D")
    tracked = [
        (f.frame_no, o)
        for f in clip.frames
        for o in f.objects
        if o.category in ("vehicle", "pedestrian")
    ]
    assert len(gt) == len(tracked)
    assert sorted(set(gt.index.get_level_values("FrameId"))) == [1, 2, 3]
    frame1 = gt.loc[1]
    exported = [o for o in clip.frames[0].objects if o.category in ("vehicle", "pedestrian")]
    v1 = next(o for o in exported if o.track_id == "v1")
    assert v1.box is not None
    row = frame1.loc[exported.index(v1) + 1]  # ids follow first appearance
    assert (row["X"], row["Y"], row["Width"], row["Height"]) == (
        v1.box.left,
        v1.box.top,
        v1.box.width,
        v1.box.height,
    )
    info = (tmp_path / clip.clip_id / "seqinfo.ini").read_text()
    assert "seqLength=3" in info and "frameRate=5" in info and "imWidth=1920" in info


async def test_bdd100k_export_loads_with_scalabel(
    dataset: list[ClipLabels], tmp_path: Path
) -> None:
    from scalabel.label.io import load

    path = tmp_path / "labels.json"
    path.write_text(json.dumps(to_bdd100k(dataset, "lava-data")))
    loaded = load(str(path))
    assert len(loaded.frames) == 12
    frame = loaded.frames[0]
    source = dataset[0].frames[0]
    assert (
        frame.name == f"{dataset[0].clip_id}/000000.jpg" and frame.videoName == dataset[0].clip_id
    )
    assert frame.attributes == {
        "weather": "rainy",
        "timeofday": "night",
        "scene": "city street",
        "lavaScene": "intersection",
        "traffic": "stop-and-go",
        "trafficDensity": "high",
        "route": "A1",
        "driveId": "d1",
    }
    parts = sum(
        (1 if o.license_plate else 0) + len(o.lights)
        for o in source.objects
        if isinstance(o, Vehicle)
    )
    assert frame.labels is not None and len(frame.labels) == len(source.objects) + parts
    by_category = {label.category: label for label in frame.labels}
    by_id = {label.id: label for label in frame.labels}
    assert by_id["v1"].category == "car" and by_id["v1"].box2d is not None
    lane_label = by_category["lane/single white"]
    assert lane_label.poly2d is not None
    assert [list(v) for v in lane_label.poly2d[0].vertices] == [[10.0, 1000.0], [500.0, 600.0]]
    sign_attributes = by_category["traffic sign"].attributes
    assert sign_attributes is not None
    assert sign_attributes["lavaSignType"] == ("highway construction and maintenance")


async def test_an_export_built_a_clip_at_a_time_is_the_whole_document(
    dataset: list[ClipLabels],
) -> None:
    """The control service builds exports a clip at a time (memory follows the files); the
    files are the documents the CLI writes."""
    coco = render(ExportFormat.COCO, dataset, "lava-data")
    assert json.loads(coco.files["annotations.json"]) == to_coco(dataset)
    assert coco.annotations == len(to_coco(dataset)["annotations"]) and coco.frames == 12
    bdd = render(ExportFormat.BDD100K, dataset, "lava-data")
    assert json.loads(bdd.files["labels.json"]) == to_bdd100k(dataset, "lava-data")
    mot = render(ExportFormat.MOT, dataset, None)
    assert {k: v.decode() for k, v in mot.files.items()} == mot_files(dataset)
    assert mot.clips == 4


def lava(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        LAVA_NAMESPACE=settings.namespace,
        AWS_ENDPOINT_URL=settings.aws.endpoint_url or "",
    )
    return subprocess.run(
        [sys.executable, "-m", "lava", *args], capture_output=True, text=True, env=env, timeout=180
    )


async def test_dataset_cli(settings: Settings, dataset: Any, tmp_path: Path) -> None:
    found = lava(
        settings,
        "dataset",
        "query",
        "--where",
        "weather=rainy",
        "--where",
        "time_of_day=night",
        "--where",
        "scene=intersection",
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("1 clip(s)\n")
    (row,) = table_rows(found.stdout, "CLIP")
    assert row["CLIP"] == "c-rain-night-x" and row["WEATHER"] == "rainy"
    assert row["TIME"] == "night" and "vehicle=5" in row["PER CLASS"]
    as_json = lava(settings, "dataset", "query", "--where", "weather=rainy", "--json")
    entries = json.loads(as_json.stdout)
    assert sorted(e["clip_id"] for e in entries) == [
        "c-rain-day-x",
        "c-rain-night-h",
        "c-rain-night-x",
    ]
    assert {e["weather"] for e in entries} == {"rainy"}
    none = lava(settings, "dataset", "query", "--where", "weather=foggy")
    assert none.returncode == 0 and none.stdout == "0 clip(s)\n"
    bad = lava(settings, "dataset", "query", "--where", "weather=sunny")
    assert bad.returncode == 2 and "'sunny' is not a weather" in bad.stderr
    for fmt, expected in (
        ("coco", "annotations.json"),
        ("bdd100k", "labels.json"),
        ("mot", "c-rain-day-x/gt/gt.txt"),
    ):
        out = lava(
            settings,
            "dataset",
            "export",
            "--format",
            fmt,
            "--out",
            str(tmp_path / fmt),
            "--where",
            "weather=rainy",
        )
        assert out.returncode == 0, out.stderr
        assert (tmp_path / fmt / expected).exists()
    report = lava(settings, "dataset", "report", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "clips: **4**" in text and "![](clips_by_weather.png)" in text
    for image in (
        "clips_by_weather.png",
        "clips_by_scene.png",
        "objects_per_class.png",
        "attr_vehicle_type.png",
    ):
        assert (tmp_path / "report" / image).stat().st_size > 1000
