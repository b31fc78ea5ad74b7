from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from devstack.testing.events import clip_ingested
from shared import events
from shared.events import (
    PAYLOAD_TYPES,
    ClipFrames,
    ClipIngested,
    Event,
    EventPayload,
    FramesReady,
    InvalidEvent,
    LevelFailed,
    TaskExpired,
    decode_event,
    derived_event_id,
    encode_event,
    event_json_schema,
    new_event,
)
from shared.taxonomy.vocabulary import Scene


def test_round_trip_keeps_every_field() -> None:
    event = new_event(clip_ingested(captured_at=datetime(2026, 5, 1, tzinfo=UTC)), "clip-1")
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded.payload, ClipIngested)


def test_every_event_type_has_a_schema_with_its_type_and_version() -> None:
    for model in PAYLOAD_TYPES:
        schema = event_json_schema(model.EVENT_TYPE)
        assert schema["properties"]["type"]["const"] == model.EVENT_TYPE
        assert schema["properties"]["version"]["const"] == model.VERSION
        assert set(schema["required"]) >= {"event_id", "type", "version", "payload"}


def test_clip_ingested_schema_names_the_taxonomy_values() -> None:
    text = json.dumps(event_json_schema("ClipIngested"))
    for value in ("partly cloudy", "dawn/dusk", "stop-and-go", "parking lot"):
        assert value in text


def _raw(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = json.loads(encode_event(new_event(clip_ingested(), "clip-1")))
    raw.update(changes)
    return raw


def test_unknown_version_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(
        InvalidEvent, match=r"ClipIngested version 7 is not supported \(supported: 1\)"
    ):
        decode_event(_raw(version=7))


def test_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="unknown event type 'ClipExploded'"):
        decode_event(_raw(type="ClipExploded"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "ClipIngested"}', "'version'"),
        (b'{"version": 1}', "'type'"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode_event(body)


def test_invalid_payload_names_the_field() -> None:
    raw = _raw()
    raw["payload"]["drive"]["weather"] = "sunny"  # type: ignore[index]
    with pytest.raises(InvalidEvent, match=r"payload\.drive\.weather"):
        decode_event(raw)


def test_unknown_payload_field_is_refused() -> None:
    raw = _raw()
    raw["payload"]["colour"] = "blue"  # type: ignore[index]
    with pytest.raises(InvalidEvent, match="colour"):
        decode_event(raw)


def test_source_spelling_contruction_is_accepted_and_corrected() -> None:
    raw = _raw()
    raw["payload"]["clip"]["scene"] = "contruction"  # type: ignore[index]
    event = decode_event(raw)
    assert isinstance(event.payload, ClipIngested)
    assert event.payload.clip.scene is Scene.CONSTRUCTION
    assert '"construction"' in encode_event(event).decode()


@pytest.mark.parametrize(
    "change",
    [
        {"fps": 0},
        {"workflows": []},
        {"workflows": ["vehicles", "vehicles"]},
        {"video_uri": "http://example.com/a.mp4"},
        {"clip_id": "../etc/passwd"},
    ],
)
def test_clip_ingested_rules(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        clip_ingested(**change)


def test_derived_event_ids_are_stable() -> None:
    assert derived_event_id("task-1", "FramesReady") == derived_event_id("task-1", "FramesReady")
    assert derived_event_id("task-1", "FramesReady") != derived_event_id("task-2", "FramesReady")


def test_envelope_requires_aware_timestamps() -> None:
    raw = _raw(occurred_at="2026-01-01T00:00:00")
    with pytest.raises(InvalidEvent, match="occurred_at"):
        decode_event(raw)


def test_typed_envelope_of_frames_ready() -> None:
    payload = FramesReady(
        task_id="clip-1.vehicles",
        clip_id="clip-1",
        workflow="vehicles",
        clip_workflows=["vehicles"],
        drive=clip_ingested().drive,
        clip=clip_ingested().clip,
        frames=ClipFrames(
            sequence_uri="s3://bkt/clips/clip-1/seq.json",
            manifest_uri="s3://bkt/clips/clip-1/manifest.jsonl",
            frame_count=10,
            width=1920,
            height=1080,
            fps=1.0,
        ),
    )
    event: Event[FramesReady] = new_event(payload, payload.task_id)
    assert decode_event(encode_event(event)).payload == payload


def test_a_superseded_version_still_in_flight_is_read_as_the_current_contract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The seam a future contract change uses: an old version registered in SUPERSEDED is
    decoded, upcast by its function, and keeps its event id (a duplicate stays a duplicate)."""

    class TaskExpiredV1(EventPayload):
        EVENT_TYPE: ClassVar[str] = "TaskExpired"
        VERSION: ClassVar[int] = 1

        task_id: str
        job_name: str
        data_object_id: str
        dedup_key: str
        failure_reason: str
        retryable: bool = True

    def upcast(old: Any) -> EventPayload:
        fields = old.model_dump(exclude={"retryable"})
        return TaskExpired(**fields) if old.retryable else LevelFailed(**fields, retryable=False)

    monkeypatch.setitem(events.SUPERSEDED, ("TaskExpired", 1), (TaskExpiredV1, upcast))
    monkeypatch.setitem(events._REGISTRY, ("TaskExpired", 1), TaskExpiredV1)
    payload = {
        "task_id": "clip-1.vehicles",
        "job_name": "VOTVehicle",
        "data_object_id": "0",
        "dedup_key": "clip-1.vehicles/1-abcd/VOTVehicle/0",
    }

    def v1(reason: str, retryable: bool) -> dict[str, object]:
        return {
            "event_id": f"id-{retryable}",
            "type": "TaskExpired",
            "version": 1,
            "occurred_at": "2026-11-26T08:00:00+00:00",
            "correlation_id": "clip-1.vehicles",
            "payload": {**payload, "failure_reason": reason, "retryable": retryable},
        }

    expiry = decode_event(v1("ClientError: Annotation tasks expired.", True))
    assert (expiry.type, expiry.version, expiry.event_id) == ("TaskExpired", 2, "id-True")
    failure = decode_event(v1("ClientError: bad input", False))
    assert (failure.type, failure.event_id) == ("LevelFailed", "id-False")
    assert isinstance(failure.payload, LevelFailed) and failure.payload.retryable is False
    assert failure.occurred_at == expiry.occurred_at


def test_no_superseded_version_ships_today() -> None:
    assert events.SUPERSEDED == {}
    with pytest.raises(InvalidEvent, match=r"TaskExpired version 1 is not supported"):
        decode_event({"type": "TaskExpired", "version": 1, "payload": {}})
