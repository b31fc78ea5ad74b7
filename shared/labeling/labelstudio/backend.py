"""The Label Studio backend behind the ``LabelingBackend`` seam.

A streaming job is a Label Studio project (title = the job's namespaced name) whose labeling
config is generated from the job type; an adjustment job's project is the review project (its
tasks arrive with the audited labels as predictions). Input still arrives the Ground Truth way:
the dispatcher publishes to the job's input topic, which feeds the job's own queue
(``GroundTruth-<name>``); the listener's Label Studio side imports from it (query, then
create) and reports completions and expiries. So the dispatcher and its policy are unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.groundtruth.job_types import job_type
from shared.labeling.backends import BackendError, EmulatorBackend, JobStatus
from shared.labeling.labelstudio.client import LabelStudioClient, LabelStudioError
from shared.labeling.labelstudio.config import labeling_config
from shared.labeling.streaming_job import ENDED, FAILED, IN_PROGRESS, StreamingJob

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import LabelingSettings

ARN_PREFIX = "labelstudio:project/"
WEBHOOK_SECRET_HEADER = "X-Lava-Webhook-Secret"
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"]


class LabelStudioUnavailable(BackendError):
    pass


def project_id(job: StreamingJob) -> int:
    if not job.arn.startswith(ARN_PREFIX):
        raise ValueError(f"job {job.name} is not a Label Studio project ({job.arn!r})")
    return int(job.arn[len(ARN_PREFIX) :])


def client_for(settings: LabelingSettings) -> LabelStudioClient:
    if not settings.labelstudio.url:
        raise LabelStudioUnavailable(
            "the labelstudio backend needs LAVA_LABELSTUDIO__URL and LAVA_LABELSTUDIO__TOKEN"
        )
    return LabelStudioClient(
        settings.labelstudio.url, settings.labelstudio.token.get_secret_value()
    )


class LabelStudioBackend:
    kind = "labelstudio"

    def __init__(self, aws: AwsClients, settings: LabelingSettings) -> None:
        self._aws = aws
        self._settings = settings

    async def create(self, job: StreamingJob) -> str:
        ls = client_for(self._settings)  # refuses at once when no server is configured
        # The input queue, subscribed to the input topic, exactly as for the emulator.
        await EmulatorBackend(self._aws, self._settings).create(job)
        spec = job_type(job.job_type)
        async with ls as client:
            project = await client.find_project(job.gt_name)
            if project is None:
                project = await client.create_project(
                    job.gt_name,
                    labeling_config(spec, review=job.adjusts is not None),
                    f"LAVA {spec.name} job {job.name}"
                    + (f" (review of {job.adjusts})" if job.adjusts else ""),
                )
            pid = int(project["id"])
            await self._ensure_webhook(client, pid)
        return f"{ARN_PREFIX}{pid}"

    async def _ensure_webhook(self, client: LabelStudioClient, pid: int) -> None:
        url = self._settings.labelstudio.webhook_url
        if not url:
            return  # reconciliation alone
        if any(h.get("url") == url for h in await client.webhooks(pid)):
            return
        secret = self._settings.labelstudio.webhook_secret.get_secret_value()
        await client.create_webhook(pid, url, {WEBHOOK_SECRET_HEADER: secret}, WEBHOOK_ACTIONS)

    async def describe(self, job: StreamingJob) -> JobStatus:
        # A project has no lifecycle of its own: it takes input once it exists (no
        # Initializing period), until the registry ends the job (stop) or it is deleted.
        if job.status in ENDED:
            return JobStatus(job.status, job.status_reason)
        async with client_for(self._settings) as client:
            try:
                await client.get_project(project_id(job))
            except LabelStudioError as exc:
                if "HTTP 404" not in str(exc):
                    raise  # unreachable is not ended: the next refresh asks again
                return JobStatus(FAILED, "the Label Studio project was deleted")
        return JobStatus(IN_PROGRESS)

    async def stop(self, job: StreamingJob) -> None:
        # Nothing to stop in Label Studio: the listener imports only for InProgress jobs.
        return None
