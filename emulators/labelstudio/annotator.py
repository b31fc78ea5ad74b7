"""A simulated annotator that works in Label Studio the way a person would, through its API.

It looks for unannotated tasks in every Label Studio job's project, opens each (its data names
the clip), draws what the clip's ground-truth sidecar shows at the extracted frames - with the
emulator's level-1 noise (box jitter, missed objects, wrong attributes) on first-level tasks -
and submits the annotation. On a review task the senior annotator corrects the pre-drawn
labels against the sidecar (region ids, hence track ids, kept). A share of first-attempt tasks
is never taken (``LAVA_EMULATOR__EXPIRE_SHARE``): the backend expires them and the dispatcher
re-sends the object under a new key. Every choice is seeded by (seed, job, dedup key).

Submitting an annotation makes Label Studio call the listener's webhook - the real path.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import structlog

from emulators.groundtruth.labels import SampledFrame, add_noise, truth_frames
from emulators.settings import EmulatorSettings
from emulators.workforce import pick
from shared.dedup import parse_dedup_key
from shared.groundtruth.job_types import job_type
from shared.labeling.jobs import JobRegistry
from shared.labeling.labelstudio.backend import client_for, project_id
from shared.labeling.labelstudio.client import KEY_FIELD, LabelStudioClient
from shared.labeling.labelstudio.media import clip_frames, frame_index
from shared.labeling.labelstudio.outputs import is_expired
from shared.labeling.labelstudio.tracks import lava_to_results
from shared.labeling.streaming_job import StreamingJob
from shared.layout import sidecar_key
from shared.loops import every
from shared.runtime import ServiceRuntime, run_service
from shared.storage import ObjectMissing, S3Store
from shared.taxonomy.records import ClipLabels

if TYPE_CHECKING:
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)


def first_attempt(key: str) -> bool:
    parts = parse_dedup_key(key)
    return parts is not None and parts.attempt_tag.startswith("1-")


class SimulatedAnnotator:
    def __init__(
        self, aws: AwsClients, settings: EmulatorSettings, client: LabelStudioClient
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.client = client
        self.registry = JobRegistry(aws, settings)
        self.s3 = S3Store(aws)
        self.done: set[int] = set()
        self.skipped: set[int] = set()
        self.counts = {"annotated": 0, "skipped": 0, "no_sidecar": 0}
        # simulated worker id -> its Label Studio user (who the annotation is completed by)
        self.users: dict[str, int] = {}

    def rng(self, job: StreamingJob, key: str) -> random.Random:
        return random.Random(f"{self.settings.emulator.seed}|{job.name}|{key}")

    async def step(self) -> None:
        jobs = [
            j
            for j in await self.registry.list()
            if j.backend == "labelstudio" and j.status == "InProgress"
        ]
        for job in jobs:
            for task in await self.client.unlabeled(project_id(job)):
                tid = int(task["id"])
                if tid in self.done or tid in self.skipped or is_expired(task):
                    continue
                await self.work_on(job, task)

    async def work_on(self, job: StreamingJob, task: dict[str, Any]) -> None:
        tid = int(task["id"])
        data = task.get("data") or {}
        key = str(data.get(KEY_FIELD))
        rng = self.rng(job, key)
        expire_share = self.settings.emulator.expire_share
        if job.adjusts is None and first_attempt(key) and rng.random() < expire_share:
            self.skipped.add(tid)
            self.counts["skipped"] += 1
            log.info("nobody takes this task", job=job.name, task=tid, key=key)
            return
        spec = job_type(job.job_type)
        index = await frame_index(self.aws, str(data["source_ref"]))
        try:
            raw = await self.s3.get_json(self.settings.names.bucket, sidecar_key(index.clip_id))
        except ObjectMissing:
            self.counts["no_sidecar"] += 1
            self.skipped.add(tid)
            log.warning("no sidecar: the simulated annotator cannot label", clip=index.clip_id)
            return
        sidecar = ClipLabels.model_validate(raw)
        clip = clip_frames(index)
        sampled = [SampledFrame(f.frame_no, f.file, f.source_frame) for f in index.frames]
        frames = truth_frames(spec, sampled, sidecar)
        adjusting = job.adjusts is not None
        worker = pick(self.settings.emulator.workforce, self.rng(job, f"{key}/worker"), adjusting)
        if not adjusting:
            frames = add_noise(frames, worker.noise, rng, index.width, index.height)
        # A review corrects the pre-drawn regions against what the clip shows; the region ids
        # are the track ids either way, so the tracks stay the same objects.
        refs = {f.frame_no: f for f in clip.frames}
        result = lava_to_results(spec, ((refs[no], objs) for no, _, objs in frames), clip)
        user = self.users.get(worker.worker_id) or await self.client.user_id(worker.worker_id)
        self.users[worker.worker_id] = user
        lead_time = round(rng.uniform(20, 90), 1)
        await self.client.annotate(tid, result, lead_time=lead_time, completed_by=user)
        self.done.add(tid)
        self.counts["annotated"] += 1
        log.info("annotated", job=job.name, task=tid, regions=len(result))


async def build(runtime: ServiceRuntime[EmulatorSettings]) -> None:
    client = client_for(runtime.settings)
    annotator = SimulatedAnnotator(runtime.aws, runtime.settings, client)

    async def loop(stop: asyncio.Event) -> None:
        try:
            await every(
                stop,
                runtime.settings.emulator.poll_seconds,
                annotator.step,
                "simulated annotator round failed; retrying",
            )
        finally:
            await client.close()

    runtime.add_loop("annotator", loop)


def main() -> None:
    run_service("ls-annotator", build, uses_bus=False, settings=EmulatorSettings.load_or_exit())
