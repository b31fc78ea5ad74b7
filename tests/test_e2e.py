"""The whole pipeline, every part a real process: RabbitMQ, a moto server, the Ground Truth
emulator and the four services."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.e2e import (
    WORKFLOW_CLASSES,
    frame_index,
    labels_of,
    make_clips,
    match_truth,
    pipeline,
    upload,
    wait_for_clips,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WORKFLOWS = ["vehicles", "lanes", "signs_lights"]


async def test_clips_through_every_workflow_and_level(tmp_path: Path, rabbitmq: str) -> None:
    clips = make_clips(tmp_path, 3)
    async with pipeline(tmp_path) as run:
        assert run.settings is not None
        ids = await upload(run.settings, clips, WORKFLOWS)
        snap = await wait_for_clips(run.settings, ids)
        assert snap.failures() == []
        assert {snap.clips[c]["clip_status"] for c in ids} == {"completed"}
        assert {t.status for t in snap.tasks.values()} == {"completed"}
        assert len(snap.tasks) == 3 * len(WORKFLOWS)
        for clip, clip_id in zip(clips, ids, strict=True):
            labels = await labels_of(run.settings, clip_id)
            index = await frame_index(run.settings, clip_id, 2)
            classes = set().union(*(WORKFLOW_CLASSES[w] for w in WORKFLOWS))
            assert match_truth(labels, clip.labels, index, classes) == []
            assert labels.frames[0].drive == clip.labels.drive
