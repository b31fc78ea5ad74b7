"""Valid sample events for tests."""

from __future__ import annotations

from shared.events import ClipFailed, ClipIngested, Event, new_event
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes


def clip_failed(clip_id: str = "clip-1", reason: str = "test") -> Event[ClipFailed]:
    return new_event(ClipFailed(clip_id=clip_id, stage="ingest", reason=reason), clip_id)


def clip_ingested(clip_id: str = "clip-1", **overrides: object) -> ClipIngested:
    data: dict[str, object] = {
        "clip_id": clip_id,
        "drive": DriveAttributes(
            drive_id="drive-1", weather="clear", time_of_day="daytime", route="I-280 N"
        ),
        "clip": ClipAttributes(scene="highway", traffic="free-flowing", traffic_density="low"),
        "video_uri": f"s3://lava-data/raw/{clip_id}.mp4",
        "fps": 1.0,
        "workflows": ["vehicles"],
    }
    data.update(overrides)
    return ClipIngested.model_validate(data)
