"""The video-frame sequence file and the input manifest line that points to it.

Sequence file: ``{"seq-no", "prefix" (ends with /), "number-of-frames" (= len(frames)),
"frames": [{"frame-no", "unix-timestamp", "frame"}]}``; a manifest line is
``{"source-ref": "s3://.../seq.json"}`` (one per data object). ``unix-timestamp`` is an
integer, and optional (sms-video-manual-data-setup); exact frame times live in ``frames.json``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.groundtruth.errors import GtFormatError


class _Hyphenated(BaseModel):
    # Ground Truth's keys are hyphenated; Python names use underscores.
    model_config = ConfigDict(
        populate_by_name=True,
        alias_generator=lambda name: name.replace("_", "-"),
        frozen=True,
        extra="ignore",
    )


class SequenceFrame(_Hyphenated):
    frame_no: int = Field(ge=0)
    unix_timestamp: int | None = None  # whole seconds (the guide's type); fractions dropped

    @field_validator("unix_timestamp", mode="before")
    @classmethod
    def _whole_seconds(cls, value: Any) -> Any:
        # Files written before the guide was followed carry fractional seconds.
        return int(value) if isinstance(value, float) else value

    frame: str = Field(min_length=1)


class SequenceFile(_Hyphenated):
    seq_no: int = Field(ge=0)
    prefix: str
    number_of_frames: int = Field(ge=1)
    frames: list[SequenceFrame] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SequenceFile:
        if not self.prefix.endswith("/"):
            raise ValueError("prefix must end with '/'")
        if self.number_of_frames != len(self.frames):
            raise ValueError(
                f"number-of-frames is {self.number_of_frames} but {len(self.frames)} frames "
                "are listed"
            )
        numbers = [f.frame_no for f in self.frames]
        if len(set(numbers)) != len(numbers):
            raise ValueError("frame-no values repeat")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def frame_uri(self, frame: SequenceFrame) -> str:
        return f"{self.prefix}{frame.frame}"


def parse_sequence_file(data: str | bytes | dict[str, Any]) -> SequenceFile:
    try:
        raw = json.loads(data) if isinstance(data, (str, bytes)) else data
        return SequenceFile.model_validate(raw)
    except ValueError as exc:
        raise GtFormatError("sequence file", _first_error(exc)) from None


class ManifestLine(BaseModel):
    """One line of an input manifest: the sequence file of one data object."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="allow")

    source_ref: str = Field(alias="source-ref", pattern=r"^s3://[^/]+/.+")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
