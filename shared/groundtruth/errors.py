"""The one error type of the Ground Truth parsers: it names the field that is wrong."""

from __future__ import annotations


class GtFormatError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
