"""The mark a gold copy carries through the pipeline's own records (never to a worker)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TruthKind = Literal["labels", "sidecar"]


class GoldRef(BaseModel):
    """This task labels a copy of gold clip ``clip_id``; its truth is at ``truth_uri``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str = Field(min_length=1, max_length=128)
    truth_uri: str = Field(min_length=6, max_length=1100)
    truth_kind: TruthKind
