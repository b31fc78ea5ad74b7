"""Ground Truth output messages as a streaming job publishes them (for listener tests)."""

from __future__ import annotations

from typing import Any

from services.listener.trust import output_prefix
from shared.labeling.streaming_job import StreamingJob
from shared.layout import parse_s3_uri


def output(
    job: StreamingJob,
    key: str,
    source: str,
    *,
    reason: str | None = None,
    adjusted: bool = False,
    carry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source-ref": source,
        "dataset-objectid-attribute-name": "lava-dedup-id",
        "lava-dedup-id": key,
        **(carry or {}),
    }
    meta: dict[str, Any] = {
        "job-name": f"labeling-job/{job.gt_name}",
        "human-annotated": "yes",
        "creation-date": "2026-05-15T08:01:16.000000",
        "type": "groundtruth/video-object-tracking",
    }
    if reason is not None:
        meta["failure-reason"] = reason
    else:
        body[job.label_attribute] = (
            f"{output_prefix(parse_s3_uri(job.label_config_uri)[0], job)}x/SeqLabel.json"
        )
        meta["class-map"] = {"0": "vehicle"}
        if adjusted:
            meta["adjustment-status"] = "adjusted"
    body[f"{job.label_attribute}-metadata"] = meta
    return body
