"""What an operation can refuse, named for both front ends (CLI message, HTTP status)."""

from __future__ import annotations

from typing import TypedDict


class OperationError(Exception):
    """An operation refused; ``str(exc)`` is the one-line reason an operator reads."""

    title = "operation refused"


class NotFound(OperationError, LookupError):
    title = "not found"


class Conflict(OperationError):
    """The target is in a state the operation does not apply to."""

    title = "conflict"


class Invalid(OperationError, ValueError):
    """The request itself is wrong (a spec that does not hold together, an unknown job);
    ``errors`` names each thing wrong where there are several (``loc``: where, ``msg``)."""

    title = "invalid request"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class FieldError(TypedDict):
    """One thing wrong with a request: where (a path into the body) and what."""

    loc: list[str]
    msg: str
