"""The gold clips of each workflow: clips whose truth is known, mixed into the stream.

``quality/gold/<workflow>/<clip id>.json`` holds what the dispatcher needs to start a copy (the
clip's frames and attributes, as its FramesReady had them) and where the truth is: the clip's
approved final labels (``labels/<clip>.json``, frames numbered as the sequence) or its sidecar
(frames numbered as the source video). An operator adds and removes them
(``lava quality gold``); nothing else writes here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events import ClipFrames
from shared.ids import task_id_of
from shared.quality.gold_ref import GoldRef, TruthKind
from shared.storage import ObjectMissing, S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes

if TYPE_CHECKING:
    from shared.aws import AwsClients

GOLD_PREFIX = "quality/gold/"


class GoldClip(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    workflow: str
    truth_uri: str
    truth_kind: TruthKind
    frames: ClipFrames
    drive: DriveAttributes
    clip: ClipAttributes
    added_at: AwareDatetime

    @property
    def ref(self) -> GoldRef:
        return GoldRef(clip_id=self.clip_id, truth_uri=self.truth_uri, truth_kind=self.truth_kind)


def gold_key(workflow: str, clip_id: str) -> str:
    return f"{GOLD_PREFIX}{workflow}/{clip_id}.json"


def copy_ids(gold: GoldClip, after_task: str) -> tuple[str, str]:
    """(clip id, task id) of the gold copy mixed in after ``after_task``: shaped like any
    clip's (``<drive>-<16 hex>``), so nothing a worker sees marks it as gold, and derived from
    the task it follows, so a redelivered FramesReady makes the same copy (created once)."""
    digest = hashlib.sha256(f"gold|{gold.clip_id}|{after_task}".encode()).hexdigest()[:16]
    clip_id = f"{gold.drive.drive_id[:40]}-{digest}"
    return clip_id, task_id_of(clip_id, gold.workflow)


class GoldClips:
    def __init__(self, aws: AwsClients, bucket: str) -> None:
        self.aws = aws
        self.bucket = bucket
        self.store = S3Store(aws)

    async def put(self, gold: GoldClip) -> None:
        await self.store.put_bytes(
            self.bucket, gold_key(gold.workflow, gold.clip_id), gold.model_dump_json().encode()
        )

    async def remove(self, workflow: str, clip_id: str) -> bool:
        if await self.store.head(self.bucket, gold_key(workflow, clip_id)) is None:
            return False
        s3 = await self.aws.s3()
        await s3.delete_object(Bucket=self.bucket, Key=gold_key(workflow, clip_id))
        return True

    async def of(self, workflow: str) -> list[GoldClip]:
        """The workflow's gold clips, in clip id order."""
        s3 = await self.aws.s3()
        found: list[GoldClip] = []
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=self.bucket, Prefix=f"{GOLD_PREFIX}{workflow}/"
        ):
            for item in page.get("Contents", []):
                try:
                    raw = await self.store.get_bytes(self.bucket, str(item["Key"]))
                except ObjectMissing:
                    continue  # removed meanwhile
                found.append(GoldClip.model_validate_json(raw))
        return sorted(found, key=lambda g: g.clip_id)
