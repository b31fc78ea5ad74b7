"""shared.dynamo_values converts as boto3's TypeSerializer/TypeDeserializer do (boto3 is a test
dependency here; the services no longer import it)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from shared.dynamo_values import deserialize, serialize

_numbers = st.integers(min_value=-(10**37), max_value=10**37) | st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
)
_scalars = st.none() | st.booleans() | _numbers | st.text(max_size=8) | st.binary(max_size=8)
_sets = (
    st.sets(_numbers.map(Decimal), min_size=1, max_size=4)
    | st.sets(st.text(max_size=4), min_size=1, max_size=4)
    | st.sets(st.binary(max_size=4), min_size=1, max_size=4)
)
_values = st.recursive(
    _scalars | _sets,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _plain(value: Any) -> Any:
    """boto3's deserialized value with its Binary wrappers unwrapped (ours gives bytes)."""
    if isinstance(value, Binary):
        return bytes(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def _sorted_sets(attribute: Any) -> Any:
    """An AttributeValue with its set members sorted (a set's order is not defined)."""
    if isinstance(attribute, dict):
        return {
            k: sorted(v) if k in ("NS", "SS", "BS") else _sorted_sets(v)
            for k, v in attribute.items()
        }
    if isinstance(attribute, list):
        return [_sorted_sets(v) for v in attribute]
    return attribute


@given(_values)
def test_serialize_gives_what_boto3_gives(value: Any) -> None:
    assert _sorted_sets(serialize(value)) == _sorted_sets(TypeSerializer().serialize(value))


@given(_values)
def test_deserialize_gives_what_boto3_gives(value: Any) -> None:
    attribute = TypeSerializer().serialize(value)
    assert deserialize(attribute) == _plain(TypeDeserializer().deserialize(attribute))


@pytest.mark.parametrize(
    "value", [1.5, Decimal("NaN"), Decimal("1e200"), Decimal("1." + "1" * 40), object()]
)
def test_what_dynamodb_cannot_hold_is_refused_as_boto3_refuses_it(value: Any) -> None:
    with pytest.raises(Exception) as ours:
        serialize(value)
    with pytest.raises(Exception) as boto3s:
        TypeSerializer().serialize(value)
    assert type(ours.value) is type(boto3s.value)


def test_the_dynamodb_helpers_do_not_import_boto3() -> None:
    code = "import sys, shared.dynamo; print('boto3' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
