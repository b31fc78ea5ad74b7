"""What the listener believes of an SQS message: the checks between "received" and "parsed".

An output is accepted only when all of these hold (anything else is *refused*: moved to the
dead-letter queue at once, with the reason in a message attribute and in the log):

- the body is bounded JSON (size, nesting, finite numbers: :mod:`shared.bounded_json`), as is
  the Ground Truth message inside the SNS envelope;
- the body is an SNS ``Notification`` envelope (not a bare message sent straight to the queue)
  whose signature verifies against SNS's certificate (:mod:`services.listener.sns_verifier`);
- the envelope's ``TopicArn`` is the output topic of a registered job (a forged topic, or no
  topic at all, names no job);
- the dedup key names that same job (a key of one job delivered through another job's topic is
  forged or misrouted);
- a label URI lies under that job's own output prefix in our bucket,
  ``s3://<bucket>/gt-output/<gt job name>/`` (Ground Truth writes under ``S3OutputPath`` +
  job name; CreateLabelingJob OutputConfig), with no ``..`` or empty path segments.

The queue policy (:func:`shared.sns_sqs.topics_send_policy`) already admits only the exact
output topics of registered jobs from our account and denies every other sender; the topic
policies let only the labeling service publish. These checks hold even if they did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import bounded_json
from shared.labeling.streaming_job import StreamingJob
from shared.layout import parse_s3_uri

# The SNS envelope of a Ground Truth output is a few KiB; a label file is referenced, not sent.
MAX_OUTPUT_BYTES = 256 * 1024
MAX_OUTPUT_DEPTH = 16
REASON_ATTRIBUTE = "lava-refused-reason"


class Refused(Exception):
    """An output the listener will never believe; the reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def output_prefix(bucket: str, job: StreamingJob) -> str:
    """Where a job's labels may be: the job's own folder under our S3OutputPath."""
    return f"s3://{bucket}/gt-output/{job.gt_name}/"


@dataclass(frozen=True)
class Envelope:
    topic: str
    body: dict[str, Any]  # the Ground Truth output message itself
    signed: dict[str, Any]  # the SNS envelope whose signature is still to be verified


def _load(text: object, what: str) -> Any:
    if not isinstance(text, (str, bytes)):
        raise Refused(f"{what} is not text")
    try:
        return bounded_json.loads(
            text, max_bytes=MAX_OUTPUT_BYTES, what=what, max_depth=MAX_OUTPUT_DEPTH
        )
    except bounded_json.UnsafeJson as exc:
        raise Refused(str(exc)) from None


def open_envelope(body: object) -> Envelope:
    """The topic and the inner Ground Truth message of an SNS notification (bounded)."""
    raw = _load(body, "SQS body")
    if not isinstance(raw, dict):
        raise Refused("SQS body is not a JSON object")
    topic = raw.get("TopicArn")
    if not isinstance(topic, str) or not topic:
        raise Refused("no TopicArn: not an SNS notification from a job's output topic")
    if raw.get("Type") != "Notification" or not isinstance(raw.get("Message"), str):
        raise Refused(
            f"not an SNS Notification envelope (Type {str(raw.get('Type'))[:40]!r}): only what "
            "SNS delivers from a job's output topic is read"
        )
    inner = _load(raw["Message"], "SNS Message")
    if not isinstance(inner, dict):
        raise Refused("the output message is not a JSON object")
    return Envelope(topic=topic, body=inner, signed=raw)


def check_job(topic: str, job: StreamingJob | None) -> StreamingJob:
    if job is None:
        raise Refused(f"topic {topic} is not the output topic of a registered job")
    return job


def check_job_name(job: StreamingJob, name: str | None) -> None:
    """A labeled output names the Ground Truth job that made it (``job-name:
    labeling-job/<name>``, sms-data-output): any other job - one created with this job's
    output topic as its own - is refused, whoever may publish to the topic."""
    if name != job.gt_name:
        raise Refused(f"the output names labeling job {name!r}, not this job's {job.gt_name!r}")


def own_output_topic(job: StreamingJob, region: str, account: str, topic_name: str) -> bool:
    """Whether the registry's output topic is the one the job's name derives (this region,
    this account, ``<ns>-<job>-output``): a job entry pointed at another topic - one whose
    policy lets others publish - is not listened to."""
    parts = job.output_topic_arn.split(":")
    return len(parts) == 6 and parts[3:] == [region, account, topic_name]


def check_key_job(job: StreamingJob, key_job: str) -> None:
    if key_job != job.name:
        raise Refused(
            f"the dedup key names job {key_job!r} but the output came from the topic of "
            f"job {job.name!r}"
        )


def check_label_uri(uri: str, bucket: str, job: StreamingJob) -> None:
    prefix = output_prefix(bucket, job)
    try:
        _, key = parse_s3_uri(uri)
    except ValueError:
        raise Refused(f"label URI {uri[:200]!r} is not an s3:// URI") from None
    segments = key.split("/")
    if not uri.startswith(prefix) or any(s in ("", ".", "..") for s in segments):
        raise Refused(f"label URI {uri[:200]!r} is not under the job's output prefix {prefix}")
