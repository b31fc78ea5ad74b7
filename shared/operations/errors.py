"""What an operation can refuse, named for both front ends (CLI message, HTTP status)."""

from __future__ import annotations


class OperationError(Exception):
    """An operation refused; ``str(exc)`` is the one-line reason an operator reads."""

    title = "operation refused"


class NotFound(OperationError, LookupError):
    title = "not found"


class Conflict(OperationError):
    """The target is in a state the operation does not apply to."""

    title = "conflict"


class Invalid(OperationError, ValueError):
    """The request itself is wrong (a spec that does not hold together, an unknown job)."""

    title = "invalid request"
