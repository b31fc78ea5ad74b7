"""Python values <-> DynamoDB AttributeValues, converted as boto3's TypeSerializer and
TypeDeserializer convert them (boto3/dynamodb/types.py), without importing boto3.

Importing ``boto3.dynamodb.types`` runs ``boto3/__init__`` - its session and resource layers,
s3transfer, multiprocessing: 57 modules, 2.1 MB in every process that reads or writes DynamoDB,
for two small classes (docs/ingestperf.md). tests/test_dynamo_values.py checks this module
against boto3's classes. One difference: a binary value reads back as ``bytes`` (boto3 wraps it
in its ``Binary``); no item of ours holds one.

    Python                      DynamoDB
    None                        {"NULL": True}
    bool                        {"BOOL": ...}
    int, Decimal                {"N": "..."} (38 digits; inexact or out of range raises)
    str                         {"S": ...}
    bytes, bytearray            {"B": ...}
    a set of one of those       {"NS"|"SS"|"BS": [...]}
    Mapping                     {"M": {...}}
    list, tuple                 {"L": [...]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's numbers: 38 significant digits, exponent -130..125 (boto3's DYNAMODB_CONTEXT).
DYNAMODB_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_binary(value: Any) -> bool:
    return isinstance(value, bytes | bytearray)


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _set_of(value: Any, kind: Callable[[Any], bool]) -> bool:
    # boto3's order: an empty set counts as a number set
    return isinstance(value, Set) and all(kind(v) for v in value)


def serialize(value: Any) -> dict[str, Any]:
    """One Python value as an AttributeValue; TypeError for what DynamoDB cannot hold."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if _is_string(value):
        return {"S": value}
    if _is_binary(value):
        return {"B": value}
    if _set_of(value, _is_number):
        return {"NS": [_number(v) for v in value]}
    if _set_of(value, _is_string):
        return {"SS": list(value)}
    if _set_of(value, _is_binary):
        return {"BS": list(value)}
    if isinstance(value, Mapping):
        return {"M": {k: serialize(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def deserialize(value: dict[str, Any]) -> Any:
    """One AttributeValue as a Python value (numbers as Decimal, sets as sets)."""
    if not value:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    kind, data = next(iter(value.items()))
    if kind == "NULL":
        return None
    if kind in ("BOOL", "S", "B"):
        return data
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(data)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(n) for n in data}
    if kind in ("SS", "BS"):
        return set(data)
    if kind == "L":
        return [deserialize(v) for v in data]
    if kind == "M":
        return {k: deserialize(v) for k, v in data.items()}
    raise TypeError(f"Dynamodb type {kind} is not supported")
