"""Drive- and clip-level attributes: what the capture rig knows and every frame inherits."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.ids import ID_PATTERN
from shared.taxonomy.vocabulary import Scene, TimeOfDay, Traffic, TrafficDensity, Weather

# Ids end up in S3 keys, dedup-key ids and file names: keep them to a safe character set.
SafeId = Annotated[str, StringConstraints(pattern=ID_PATTERN, strict=True)]


class DriveAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drive_id: SafeId
    weather: Weather
    time_of_day: TimeOfDay
    route: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ClipAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scene: Scene
    traffic: Traffic
    traffic_density: TrafficDensity
