"""Who labeled a data object: the worker identity each backend gives, and its pseudonym.

Ground Truth (sms-data-output, "Worker Metadata"): the output manifest line names no worker;
each worker's answer is a timestamped JSON file under
``<output>/<job>/annotations/worker-response/iteration-<n>/<data object>/`` holding
``answers: [{acceptanceTime, submissionTime, timeSpentInSeconds, workerId,
workerMetadata: {identityData: {identityProviderType, issuer, sub}}}]`` (``workerMetadata``
only for a private workforce). The consolidated label of the same data object is
``.../annotations/consolidated-annotation/output/<data object>/SeqLabel.json``, so the label
URI names the folder to read. Label Studio: an annotation's ``completed_by`` (a user id) and
``lead_time`` (seconds).

What is stored: the backend's opaque worker id (and the identity provider's ``sub``), never a
name or an e-mail. Who sees it: :func:`pseudonym` is what the viewer role and the dataset
report show; only operators and admins see the stored id (docs/quality.md).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

WorkerId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Backend = Literal["groundtruth", "labelstudio"]

WORKER_RESPONSE_DIR = "annotations/worker-response"
CONSOLIDATED_DIR = "annotations/consolidated-annotation/output"


class WorkerIdentity(BaseModel):
    """One worker's identity and timing for one finished data object."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    backend: Backend
    worker_id: WorkerId
    sub: WorkerId | None = None
    issuer: Annotated[str, StringConstraints(max_length=512)] | None = None
    accepted_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None
    time_spent_seconds: float | None = Field(None, ge=0, le=1e9)


class WorkerResponseMissing(Exception):
    """No readable worker-response file for a data object."""


def worker_response_location(label_key: str) -> tuple[str, str] | None:
    """Where the worker responses of the data object whose consolidated label is
    ``label_key`` are: the job's worker-response prefix (iterations below it) and the data
    object's folder name; None when the key is not under a job's
    ``consolidated-annotation/output/<data object>/``."""
    marker = f"/{CONSOLIDATED_DIR}/"
    head, sep, tail = label_key.partition(marker)
    data_object = tail.split("/", 1)[0] if sep else ""
    if not data_object:
        return None
    return f"{head}/{WORKER_RESPONSE_DIR}/", data_object


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        # ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (sms-data-output)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def from_worker_response(document: Any) -> WorkerIdentity:
    """The identity in one Ground Truth worker-response file (its first answer: video frame
    jobs take one worker per data object); :class:`WorkerResponseMissing` when it has none."""
    answers = document.get("answers") if isinstance(document, dict) else None
    answer = answers[0] if isinstance(answers, list) and answers else None
    if not isinstance(answer, dict) or not isinstance(answer.get("workerId"), str):
        raise WorkerResponseMissing("the worker-response file has no answer with a workerId")
    metadata = answer.get("workerMetadata")
    identity = metadata.get("identityData") if isinstance(metadata, dict) else None
    identity = identity if isinstance(identity, dict) else {}
    spent = answer.get("timeSpentInSeconds")
    return WorkerIdentity(
        backend="groundtruth",
        worker_id=answer["workerId"],
        sub=identity.get("sub") if isinstance(identity.get("sub"), str) else None,
        issuer=identity.get("issuer") if isinstance(identity.get("issuer"), str) else None,
        accepted_at=_time(answer.get("acceptanceTime")),
        submitted_at=_time(answer.get("submissionTime")),
        time_spent_seconds=float(spent) if isinstance(spent, int | float) else None,
    )


def from_labelstudio_annotation(annotation: dict[str, Any]) -> WorkerIdentity | None:
    """The annotator of a Label Studio annotation: ``completed_by`` is a user id (or, in some
    API versions, a user object with an ``id``); ``lead_time`` the seconds spent on it."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id")
    if who is None or isinstance(who, bool):
        return None
    spent = annotation.get("lead_time")
    return WorkerIdentity(
        backend="labelstudio",
        worker_id=str(who),
        submitted_at=_time(annotation.get("updated_at") or annotation.get("created_at")),
        time_spent_seconds=float(spent) if isinstance(spent, int | float) and spent >= 0 else None,
    )


def pseudonym(worker: WorkerIdentity | str, key: str) -> str:
    """A stable stand-in for a worker id (``w-`` and 10 hex digits): the same worker is the
    same row everywhere, and without ``key`` nobody can map it back to the backend's id."""
    raw = worker.worker_id if isinstance(worker, WorkerIdentity) else worker
    digest = hmac.new(key.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return f"w-{digest[:10]}"
