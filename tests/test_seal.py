"""Sealed input messages (shared/seal.py): what opens, what does not, and the settings check."""

from __future__ import annotations

from typing import Any

import pytest

from shared.dedup import KnownObject, dedup_key_id
from shared.groundtruth.messages import DedupKey, input_message
from shared.seal import (
    LEVEL_FIELD,
    MAX_FIELD_CHARS,
    SEAL_FIELD,
    TRACE_FIELD,
    Sealer,
    seal_fields,
)
from shared.seal_keys import SealKeyError, seal_keys
from shared.settings import Settings

KEY = "k" * 32
NS = "lava"
OLD = "o" * 32
KEY_ID = dedup_key_id("clip-1.vehicles", "VOTVehicle", "0", 1)
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def sealed_output(
    sealer: Sealer, level: int = 1, trace: dict[str, str] | None = None
) -> dict[str, Any]:
    """An output as Ground Truth returns it: the input line (seal included) plus labels."""
    body = input_message(
        "s3://b/clip/seq.json",
        DedupKey("lava-dedup-id", KEY_ID),
        sealer.fields(KEY_ID, level, trace),
    )
    return {**body, "vehicle-ref": "s3://b/out/SeqLabel.json", "vehicle-ref-metadata": {}}


def test_a_sealed_output_opens_to_its_data_object() -> None:
    sealer = Sealer(seal_keys(KEY), NS)
    known = sealer.open(sealed_output(sealer, 2, TRACE), KEY_ID)
    assert known == KnownObject("clip-1.vehicles", "VOTVehicle", "0", 2, TRACE)
    assert sealer.open(sealed_output(sealer), KEY_ID) == KnownObject(
        "clip-1.vehicles", "VOTVehicle", "0", 1, None
    )


@pytest.mark.parametrize(
    "change",
    [
        {LEVEL_FIELD: "2"},  # another level
        {TRACE_FIELD: '{"traceparent":"00-1-2-01"}'},  # another trace
        {SEAL_FIELD: "v1." + "0" * 64},  # a made-up seal
        {SEAL_FIELD: None},  # no seal
        {LEVEL_FIELD: "one"},  # not a level
        {LEVEL_FIELD: "\u00b2"},  # "2" superscript: str.isdigit() says yes, int() says no
        {LEVEL_FIELD: "1" * 5000},  # longer than int() converts
        {SEAL_FIELD: "v1.\u00e9t\u00e9"},  # not ASCII: compare_digest refuses str
        {SEAL_FIELD: 7},  # not text
    ],
)
def test_a_changed_field_does_not_open(change: dict[str, object]) -> None:
    """Each check refuses it on its own (``_open``: without the guard that catches the rest)."""
    sealer = Sealer(seal_keys(KEY), NS)
    output = {**sealed_output(sealer, 1, TRACE), **change}
    output = {k: v for k, v in output.items() if v is not None}
    assert sealer._open(output, KEY_ID) is None
    assert sealer.open(output, KEY_ID) is None


def test_an_output_that_breaks_the_checks_is_looked_up_not_raised() -> None:
    """Whatever an output carries, the worst it gets is a lookup."""

    class Hostile(dict[str, Any]):
        def get(self, *args: Any) -> Any:
            raise RecursionError("nested too deep")

    sealer = Sealer(seal_keys(KEY), NS)
    with pytest.raises(RecursionError):
        sealer._open(Hostile(), KEY_ID)
    assert sealer.open(Hostile(), KEY_ID) is None


def test_only_seal_fields_as_the_dispatcher_writes_them_are_kept() -> None:
    """What a Label Studio import claim keeps of its input message (``seal_fields``)."""
    longest = "x" * MAX_FIELD_CHARS
    message = {
        SEAL_FIELD: "v1." + "0" * 64,
        TRACE_FIELD: longest,  # as long as a kept field may be
        LEVEL_FIELD: 1,  # not text
        "source-ref": "s3://b/k",  # not a seal field
    }
    assert seal_fields(message) == {SEAL_FIELD: "v1." + "0" * 64, TRACE_FIELD: longest}
    assert seal_fields({TRACE_FIELD: longest + "x", LEVEL_FIELD: "\udcff"}) == {}


def test_a_seal_opens_only_for_its_own_key_id_and_namespace() -> None:
    sealer = Sealer(seal_keys(KEY), NS)
    other = dedup_key_id("clip-1.vehicles", "VOTVehicle", "0", 2)  # the next attempt's key
    assert sealer.open(sealed_output(sealer), other) is None
    assert sealer.open(sealed_output(sealer), "not-a-key") is None
    staging = Sealer(seal_keys(KEY), "staging")  # the same key in another deployment
    assert staging.open(sealed_output(sealer), KEY_ID) is None


def test_keys_rotate_the_first_seals_every_one_opens() -> None:
    before = Sealer(seal_keys(OLD), NS)
    during = Sealer(seal_keys(f"{KEY}, {OLD}"), NS)
    after = Sealer(seal_keys(KEY), NS)
    old_output = sealed_output(before)
    assert during.open(old_output, KEY_ID) is not None  # in flight across the rotation
    assert during.fields(KEY_ID, 1, None) == after.fields(KEY_ID, 1, None)
    assert after.open(old_output, KEY_ID) is None  # retired: looked up instead


def test_no_keys_no_sealer_and_short_keys_are_refused_in_one_line() -> None:
    assert Sealer.of("", NS) is None
    assert Sealer.of(" , ", NS) is None
    with pytest.raises(SealKeyError, match="seal key 2 has 5 characters; at least 32"):
        seal_keys(f"{KEY},short")
    with pytest.raises(ValueError, match="seal key 1 has 3 characters"):
        Settings.load(labeling__seal_keys="abc")
