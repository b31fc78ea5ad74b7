"""Streaming-job messages: the input message with its dedup key, and the output message.

Input (one SNS message per data object, a manifest line plus the de-duplication fields):
``{"source-ref": ..., "dataset-objectid-attribute-name": "<key-name>", "<key-name>": "<id>"}``
plus, for adjustment jobs, the audited label attribute and its metadata.

Output (one SNS message per finished object, the output manifest line): the input fields, the
label attribute (``"<attr>": "s3://.../SeqLabel.json"``) and ``"<attr>-metadata"``. Expired and
failed objects carry ``failure-reason`` in the metadata and no label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.groundtruth import limits
from shared.groundtruth.errors import GtFormatError


@dataclass(frozen=True)
class DedupKey:
    """Ground Truth's de-duplication key: a repeated (name, id) is labeled only once."""

    name: str
    id: str

    def __post_init__(self) -> None:
        if len(self.name) > limits.MAX_DEDUP_KEY_NAME or not limits.DEDUP_KEY_NAME_PATTERN.match(
            self.name
        ):
            raise ValueError(
                f"dedup key name {self.name!r} must match "
                f"{limits.DEDUP_KEY_NAME_PATTERN.pattern} and be at most "
                f"{limits.MAX_DEDUP_KEY_NAME} characters"
            )
        if not 1 <= len(self.id) <= limits.MAX_DEDUP_KEY_ID:
            raise ValueError(f"dedup key id must be 1-{limits.MAX_DEDUP_KEY_ID} characters")


def input_message(
    source_ref: str, key: DedupKey, carry: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON body of one input SNS message."""
    body: dict[str, Any] = {"source-ref": source_ref}
    if carry:
        body.update(carry)
    body[limits.DEDUP_ATTRIBUTE] = key.name
    body[key.name] = key.id
    return body


def dedup_key_of(message: dict[str, Any]) -> DedupKey | None:
    name = message.get(limits.DEDUP_ATTRIBUTE)
    if not isinstance(name, str):
        return None
    value = message.get(name)
    if not isinstance(value, str):
        return None
    try:
        return DedupKey(name, value)
    except ValueError:
        return None


class OutputStatus(StrEnum):
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True)
class OutputMessage:
    status: OutputStatus
    label_attribute: str
    job_name: str | None
    label_uri: str | None
    metadata: dict[str, Any]
    dedup_key: DedupKey | None
    source_ref: str | None
    adjustment_status: str | None = None
    failure_reason: str | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def class_map(self) -> dict[str, str]:
        raw = self.metadata.get("class-map") or {}
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def unwrap_sns(data: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The Ground Truth body of an SNS notification envelope, or the bare body itself."""
    try:
        raw = json.loads(data) if isinstance(data, (str, bytes)) else data
    except ValueError as exc:
        raise GtFormatError("message", f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise GtFormatError("message", "not a JSON object")
    if raw.get("Type") == "Notification" and "Message" in raw:
        inner = raw["Message"]
        if not isinstance(inner, str):
            raise GtFormatError("Message", "SNS Message is not a string")
        try:
            raw = json.loads(inner)
        except ValueError as exc:
            raise GtFormatError("Message", f"not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise GtFormatError("Message", "not a JSON object")
    return raw


def _label_attribute(body: dict[str, Any], hint: str | None) -> str:
    if hint is not None:
        if f"{hint}-metadata" not in body:
            raise GtFormatError(f"{hint}-metadata", "missing (no output of this label attribute)")
        return hint
    candidates = [
        key[: -len("-metadata")]
        for key, value in body.items()
        if key.endswith("-metadata") and key != "source-ref-metadata" and isinstance(value, dict)
    ]
    if not candidates:
        raise GtFormatError("<label-attribute>-metadata", "missing: no label attribute found")
    if len(candidates) == 1:
        return candidates[0]

    # An adjustment job's output also carries the audited job's label: the newest one wins,
    # and one that reports an adjustment or a failure is the newest by construction.
    def rank(attr: str) -> tuple[int, str]:
        meta = body[f"{attr}-metadata"]
        marked = int("adjustment-status" in meta or "failure-reason" in meta)
        return (marked, str(meta.get("creation-date", "")))

    ranked = sorted(candidates, key=rank, reverse=True)
    if rank(ranked[0]) == rank(ranked[1]):
        raise GtFormatError("<label-attribute>", f"ambiguous: {', '.join(sorted(candidates))}")
    return ranked[0]


def _job_name(metadata: dict[str, Any]) -> str | None:
    value = metadata.get("job-name")
    if not isinstance(value, str) or not value:
        return None
    # Ground Truth writes "labeling-job/<name>".
    return value.rsplit("/", 1)[-1]


def parse_output_message(
    data: str | bytes | dict[str, Any], label_attribute: str | None = None
) -> OutputMessage:
    """Parse one output message (SNS envelope or bare body); errors name the field."""
    body = unwrap_sns(data)
    attr = _label_attribute(body, label_attribute)
    metadata = body[f"{attr}-metadata"]
    if not isinstance(metadata, dict):
        raise GtFormatError(f"{attr}-metadata", "not an object")
    source_ref = body.get("source-ref") if isinstance(body.get("source-ref"), str) else None
    key = dedup_key_of(body)
    reason = metadata.get("failure-reason")
    if reason is not None:
        reason = str(reason)
        status = (
            OutputStatus.EXPIRED
            if reason.startswith(limits.EXPIRED_REASON_PREFIX)
            else OutputStatus.FAILED
        )
        return OutputMessage(
            status=status,
            label_attribute=attr,
            job_name=_job_name(metadata),
            label_uri=None,
            metadata=metadata,
            dedup_key=key,
            source_ref=source_ref,
            failure_reason=reason,
            body=body,
        )
    label_uri = body.get(attr)
    if not isinstance(label_uri, str) or not label_uri.startswith("s3://"):
        raise GtFormatError(attr, "missing or not an s3:// URI (and no failure-reason)")
    adjustment = metadata.get("adjustment-status")
    return OutputMessage(
        status=OutputStatus.COMPLETED,
        label_attribute=attr,
        job_name=_job_name(metadata),
        label_uri=label_uri,
        metadata=metadata,
        dedup_key=key,
        source_ref=source_ref,
        adjustment_status=str(adjustment) if adjustment is not None else None,
        body=body,
    )
