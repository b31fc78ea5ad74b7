"""Page cursors of the task lists (the API's and the dashboard's): the ``by-status`` index key
of a page's last item, base64 JSON, checked on the way back in so that a made-up cursor is a
clear 422 and never reaches DynamoDB as an arbitrary start key."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.operations.errors import Invalid

CURSOR_FIELDS: dict[str, type | tuple[type, ...]] = {
    "pk": str,
    "sk": str,
    "status_key": str,
    "updated_at": (int, float),
}


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str, status_key: str) -> dict[str, Any]:
    """The index key a cursor stands for; :class:`Invalid` unless it is one of this list's."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this service gave") from None
    if (
        not isinstance(key, dict)
        or set(key) != set(CURSOR_FIELDS)
        or not all(isinstance(key[k], t) for k, t in CURSOR_FIELDS.items())
        or key["status_key"] != status_key
    ):
        raise Invalid("cursor is not one this service gave (for this list)")
    return key
