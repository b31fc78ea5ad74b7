"""Typed settings, read from ``LAVA_*`` environment variables, in groups.

Each concern is one group (a frozen model): ``log``, ``broker``, ``aws``, ``runtime`` (what every
process needs), then ``ingest``, ``labeling``, ``labelstudio``, ``dispatch``, ``listener``,
``postproc``, ``control``. A group's variable is ``LAVA_<GROUP>__<NAME>``
(``LAVA_DISPATCH__RESEND_INTERVAL_SECONDS``); ``LAVA_NAMESPACE`` stays at the top. Code reads
``settings.dispatch.resend_interval_seconds``.

Why nested groups composed per process, rather than one flat model or one hand-written model
per service: the groups are the unit of meaning (one place per concern, one docs settings table
each), and each process model below is just the groups that process reads -
:class:`IngestSettings` never sees the Label Studio token, and a function's parameter type says
which groups it depends on (``TaskStore`` takes any :class:`ServiceSettings`, the dispatcher
a :class:`DispatcherSettings`). The CLI loads :class:`Settings`, every production group.

Not here, on purpose: the Ground Truth emulator's settings (``emulators/settings.py``) and
fault injection (``devstack/faults.py``). No production process model has them, so a production
service neither reads nor validates ``LAVA_EMULATOR__*`` / ``LAVA_FAULT__*``.

Every default lives here with a one-line description; ``lava config`` prints the effective
values and the docs' settings tables (docs/reference/settings.md) are generated from these
models (a test keeps them in step). Tests change settings with :meth:`ServiceSettings.replace`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.groundtruth import limits
from shared.names import Namespace

# A namespace prefix ends up in S3 bucket names (lowercase, digits, hyphens), SNS topic and
# Ground Truth job names; keep it to the intersection of their character sets.
_NAMESPACE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,23}")
_ACCOUNT_PATTERN = re.compile(r"[0-9]{12}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# The account moto (and LocalStack) report for any credentials.
LOCAL_ACCOUNT = "123456789012"

PREFIX = "LAVA_"
DELIMITER = "__"


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class Group(BaseModel):
    """One group of settings: frozen, and unknown names are errors (a typo is not a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- groups every process loads ---------------------------------------------------------------
class LogConfig(Group):
    """Logging."""

    format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` for production, `console` for people; `auto` picks by TTY."
    )
    level: str = Field("INFO", description="Minimum log level.")


class BrokerConfig(Group):
    """RabbitMQ: connection, consumers, redelivery."""

    amqp_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ connection URL; its user is this component's broker identity "
        "(shared/broker_identities.py). A secret: never printed.",
    )
    max_event_bytes: int = Field(
        256 * 1024,
        gt=0,
        description="Largest event body accepted; a larger one is dead-lettered unparsed.",
    )
    delivery_limit: int = Field(
        5,
        ge=0,
        description="Quorum-queue delivery limit: a message is delivered at most this + 1 times.",
    )
    prefetch: int = Field(16, ge=1, description="Unacknowledged messages per consumer.")
    handler_concurrency: int = Field(
        16,
        ge=1,
        description=(
            "Handlers a consumer runs at once; further prefetched messages wait for a slot "
            "(and go back to the queue untouched if the service stops first)."
        ),
    )
    redelivery_backoff_seconds: float = Field(
        0.5,
        ge=0,
        description="Base pause before a failed message is requeued; doubles per delivery.",
    )
    redelivery_backoff_max_seconds: float = Field(
        30.0, ge=0, description="Cap on the requeue pause."
    )
    publish_retry_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a publish waits for a dropped broker connection to come back.",
    )
    local_all_in_one: bool = Field(
        False,
        description="A local all-in-one run: a service may connect as a user that is not its "
        "component identity (e.g. guest), which turns the origin check off. Otherwise a "
        "service refuses to start with such a user.",
    )


class AwsConfig(Group):
    """AWS clients and the pipeline's bucket."""

    endpoint_url: str | None = Field(
        None,
        description="AWS endpoint (moto, LocalStack); unset = real AWS. Also `AWS_ENDPOINT_URL`.",
    )
    region: str = Field(
        "us-east-1", description="AWS region. Also `AWS_DEFAULT_REGION` / `AWS_REGION`."
    )
    account_id: str = Field(
        "",
        description="Account that owns the bucket (12 digits): sent as ExpectedBucketOwner on "
        "every S3 call and part of the default bucket name. Required for real AWS; against an "
        "emulator it defaults to the emulator's account.",
    )
    bucket: str = Field(
        "",
        description="The pipeline's S3 bucket; empty = <namespace>-<account>-<region> (a bare "
        "<namespace>-data is guessable and anyone could own it).",
    )
    retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        "standard", description="botocore retry mode for every client."
    )
    max_attempts: int = Field(
        8, ge=1, description="botocore total attempts per AWS call (the original used 8)."
    )
    max_pool_connections: int = Field(32, ge=1, description="HTTP connections per AWS client.")

    @field_validator("account_id")
    @classmethod
    def _check_account(cls, value: str) -> str:
        if value and not _ACCOUNT_PATTERN.fullmatch(value):
            raise ValueError(f"an AWS account id is 12 digits (got {value!r})")
        return value

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if value and not _BUCKET_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an S3 bucket name (3-63 of a-z, 0-9, -)")
        return value

    @property
    def account(self) -> str:
        """The AWS account that owns the bucket (moto's fixed account against an emulator)."""
        if self.account_id:
            return self.account_id
        if self.endpoint_url:
            return LOCAL_ACCOUNT
        # Unknown: AwsClients refuses to talk to real AWS without it (see shared.aws).
        return ""


class RuntimeConfig(Group):
    """The service runtime: health server, shutdown, idempotency guard."""

    health_host: str = Field(
        "127.0.0.1",
        description="Bind address of the health/metrics server (Kubernetes sets 0.0.0.0).",
    )
    health_port: int = Field(
        8080, ge=0, le=65535, description="Port of /healthz, /readyz, /metrics (0 = any free)."
    )
    shutdown_grace_seconds: float = Field(
        30.0, gt=0, description="On SIGTERM, how long in-flight handlers may take to finish."
    )
    processed_event_ttl_seconds: int = Field(
        14 * 24 * 3600,
        gt=0,
        description="How long the idempotency guard remembers a handled event id.",
    )
    handler_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claimed event is protected from a concurrent duplicate (a "
        "crashed worker's claim is taken over after it).",
    )


# --- groups of one service (or a few) ---------------------------------------------------------
class IngestConfig(Group):
    """The ingest service: what clips it accepts and how it extracts frames."""

    allowed_buckets: str = Field(
        "",
        description="Comma-separated buckets clips may come from; empty = the namespace bucket.",
    )
    max_bytes: int = Field(
        1024**3,
        gt=0,
        description="Largest clip file accepted, enforced while it streams to local disk "
        "(the work dir needs this much per clip at once).",
    )
    max_duration_seconds: float = Field(
        120.0, gt=0, description="Longest clip accepted (the rig sends 10 s clips)."
    )
    max_width: int = Field(4096, gt=0, description="Widest frame accepted, in pixels.")
    max_height: int = Field(2304, gt=0, description="Tallest frame accepted, in pixels.")
    min_side: int = Field(16, gt=0, description="Smallest frame side accepted.")
    codecs: str = Field(
        "h264,hevc,mpeg4,vp9,av1", description="Comma-separated video codecs accepted."
    )
    containers: str = Field(
        "mp4,mov,matroska,webm", description="Comma-separated container formats accepted."
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of frames.")
    upload_concurrency: int = Field(
        0,
        ge=0,
        description="Frames uploaded to S3 at once per clip; 0 = as many JPEGs of the largest "
        "frame as LAVA_INGEST__JPEG_BUFFER_MB holds (4 to 16).",
    )
    concurrency: int = Field(
        0,
        ge=0,
        description="Clips processed at once per ingest process; 0 = derived from the cgroup "
        "CPU and memory limits (see docs/services/ingest.md, Ingest memory).",
    )
    decode_threads: int = Field(
        0,
        ge=0,
        description="Decoder threads per clip; 0 = the usable CPUs shared among the clips "
        "(LAVA_INGEST__DECODE_MEMORY_MB may allow fewer).",
    )
    jpeg_buffer_mb: float = Field(
        8.0,
        gt=0,
        description="MiB of JPEG frames held per clip between the encoder and S3 (queued and "
        "uploading; one frame passes alone if larger).",
    )
    decode_memory_mb: float = Field(
        64.0,
        gt=0,
        description="MiB of decoded pictures per clip: caps the decoders at the clip's "
        "resolution (10 pictures each; one decoder always runs).",
    )
    work_dir: Path | None = Field(
        None, description="Where clips are downloaded for decoding (default: system temp)."
    )

    @property
    def accepted_codecs(self) -> frozenset[str]:
        return _csv(self.codecs)

    @property
    def accepted_containers(self) -> frozenset[str]:
        return _csv(self.containers)


class LabelingConfig(Group):
    """Labeling jobs: the workflow catalog and the task settings of new jobs (any backend;
    the ARNs are the SageMaker backend's)."""

    workflows_file: Path | None = Field(
        None, description="TOML file of workflows and jobs (default: shared/workflows.toml)."
    )
    role_arn: str = Field("", description="IAM role Ground Truth assumes (SageMaker backend).")
    workteam_arn: str = Field("", description="Private workteam ARN (SageMaker backend).")
    task_availability_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="TaskAvailabilityLifetimeInSeconds of new jobs (AWS: 60 s - 30 days).",
    )
    task_time_limit_seconds: int = Field(
        3 * 24 * 3600, ge=1, description="TaskTimeLimitInSeconds of new jobs (AWS: >= 30 s)."
    )
    max_concurrent_tasks: int = Field(
        limits.DEFAULT_MAX_CONCURRENT_TASKS,
        ge=1,
        le=limits.MAX_CONCURRENT_TASKS,
        description="MaxConcurrentTaskCount of new jobs.",
    )
    workers_per_object: int = Field(
        1, ge=1, le=9, description="NumberOfHumanWorkersPerDataObject of new jobs."
    )
    spec_fps: float = Field(
        1.0,
        gt=0,
        le=120,
        description="Frames per second of a spec's clip that names none (the original's "
        "form, `inputConfig.inputManifestS3Uri`, has no fps).",
    )
    worker_identities: bool = Field(
        True,
        description="Whether outputs carry who labeled them (Ground Truth: the worker-response "
        "file, 2 S3 requests per output; Label Studio: the annotation's user). false where "
        "workers may not be tracked one by one: quality reports then count every output as "
        "(unknown) and show jobs and classes only (docs/quality.md).",
    )
    seal_keys: SecretStr = Field(
        SecretStr(""),
        description="Keys the dispatcher seals input messages with and the listener opens "
        "outputs with (comma-separated, newest first: the first seals, all open, so a key "
        "rotates; each >= 32 characters). A sealed output needs no key lookup; empty: every "
        "output is looked up (docs/policy.md). From a Secret.",
    )
    hash_max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="Largest clip a task request hashes itself for its clip id when the "
        "object lacks the capture rig's content hash (`lava upload` records it); a larger "
        "one is refused (422).",
    )

    @field_validator("seal_keys")
    @classmethod
    def _check_seal_keys(cls, value: SecretStr) -> SecretStr:
        from shared.seal_keys import seal_keys  # a process with bad keys must not start

        seal_keys(value.get_secret_value())
        return value


class LabelStudioConfig(Group):
    """The Label Studio backend (jobs served by a Label Studio server)."""

    url: str = Field(
        "",
        description="Label Studio server (e.g. http://127.0.0.1:8081); empty = no Label Studio "
        "jobs are served.",
    )
    token: SecretStr = Field(
        SecretStr(""), description="API token of the Label Studio user the pipeline acts as."
    )
    webhook_url: str = Field(
        "",
        description="URL Label Studio posts webhooks to (the listener's webhook server); empty "
        "= no webhooks, reconciliation only.",
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="Shared secret Label Studio sends in the X-Lava-Webhook-Secret header; a "
        "webhook without it is refused (an empty secret refuses every webhook).",
    )
    webhook_host: str = Field(
        "127.0.0.1", description="Bind address of the listener's webhook server."
    )
    webhook_port: int = Field(
        8091, ge=0, le=65535, description="Port of the listener's webhook server (0 = any free)."
    )
    reconcile_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the listener reconciles Label Studio annotations (by update "
        "time) and applies the availability lifetime; webhooks are only the fast path.",
    )
    time_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies the task availability lifetime the Label Studio backend "
        "applies (tests and demos shorten it).",
    )
    import_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long an importer's claim on a dedup key holds before another may "
        "take it over (a crashed importer).",
    )
    media_url_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of the presigned clip/frame URLs a task carries (SigV4: at most "
        "7 days).",
    )


class DispatchConfig(Group):
    """The dispatcher's dedup-key and resend policy."""

    dedup_key_name: str = Field(
        "lava-dedup-id", description="Name of the dedup key field in Ground Truth input messages."
    )
    resend_interval_seconds: float = Field(
        5 * 24 * 3600,
        gt=0,
        description="Re-send a waiting data object with the same key this often (beats the "
        "14-day input-queue expiry).",
    )
    level_timeout_seconds: float = Field(
        5 * 24 * 3600,
        gt=0,
        description="Re-trigger a level (same keys) not complete within this time.",
    )
    level_max_retriggers: int = Field(
        6, ge=0, description="After this many level re-triggers the task fails."
    )
    max_expirations: int = Field(
        5, ge=0, description="Expirations of one data object tolerated before its task fails."
    )
    sweep_interval_seconds: float = Field(
        30.0, gt=0, description="How often the dispatcher looks for due re-sends and timeouts."
    )
    job_recheck_seconds: float = Field(
        60.0,
        gt=0,
        description="While some job does not take input (a new job is Initializing; an ended "
        "one waits to be re-created), how often the dispatcher asks each job's backend for its "
        "status and re-checks the sends it holds for it.",
    )
    job_list_seconds: float = Field(
        600.0,
        gt=0,
        description="While every job takes input (InProgress), how often the dispatcher reads "
        "the job registry (one Scan) to notice a job that stopped; its waiting objects are held "
        "and re-sent with new keys when it is noticed, so late costs time, not work.",
    )
    send_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="A send the sweep claimed (or a failure's ClipFailed) not confirmed within "
        "this time is made again (crash safety); an event's own sends are redone by its "
        "redelivery instead.",
    )
    retry_base_seconds: float = Field(
        5.0, ge=0, description="First pause after a transient AWS error (the original: 5 s)."
    )
    retry_factor: float = Field(
        2.0, ge=1, description="Each further pause is this many times longer."
    )
    retry_attempts: int = Field(
        8, ge=1, description="Attempts before a transient AWS error fails the task."
    )


class ListenerConfig(Group):
    """The listener: how it reads the jobs' output queue."""

    wait_seconds: int = Field(
        20, ge=0, le=20, description="SQS long-poll wait per receive (max 20 s)."
    )
    concurrency: int = Field(4, ge=1, description="Receive loops running at once.")
    visibility_timeout_seconds: int = Field(
        60, ge=0, description="How long a received output stays hidden before it is retried."
    )
    max_receive_count: int = Field(
        5, ge=1, description="Receives of one output before SQS moves it to the dead-letter queue."
    )
    delete_batch_seconds: float = Field(
        1.0,
        ge=0,
        description="How long a handled output's SQS delete may wait for others to share its "
        "DeleteMessageBatch (10 a request); 0 = at once. At most a quarter of the visibility "
        "timeout: a crash meanwhile offers the output again, a duplicate the dispatcher "
        "tolerates.",
    )
    refresh_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the listener reads the job registry (one Scan) to subscribe to "
        "newly registered jobs' output topics. Keep it well under a new job's Initializing "
        "period (Ground Truth: minutes), during which the dispatcher sends it nothing; a "
        "re-created job is noticed by its first output instead.",
    )
    sns_trusted_cert: Path | None = Field(
        None,
        description="PEM certificate whose key signs the output notifications, used instead of "
        "fetching SigningCertURL from SNS. Unset: real AWS fetches SNS's certificate (HTTPS, "
        "sns.<region>.amazonaws.com only); against an emulator the local SNS stand-in's "
        "(~/.cache/lava/local-sns/sns-signing-cert.pem).",
    )
    sns_cert_fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of one fetch of SNS's signing certificate."
    )

    @property
    def delete_wait_seconds(self) -> float:
        """The wait used: the setting, capped at a quarter of the visibility timeout."""
        return min(self.delete_batch_seconds, self.visibility_timeout_seconds / 4)


class PostprocConfig(Group):
    """Post-processing: validation strictness and the adjustment diff."""

    fail_on: Literal["never", "error", "warning"] = Field(
        "error",
        description="Validation problems of this severity (or worse) fail the clip; lesser "
        "ones complete it with warnings listed in its summary.",
    )
    moved_iou: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Adjustment diff: a box whose IoU with its level-1 box is below this moved.",
    )
    quality_records: bool = Field(
        True,
        description="Write a quality record per finalized task (docs/quality.md: gold scores, "
        "level-to-level agreement, throughput). false: none, and gold copies are not scored "
        "(set LAVA_QUALITY__GOLD_RATE=0 too); saves the record's write and its reads.",
    )


class QualityConfig(Group):
    """Label quality: gold clips in the stream, how workers are named (docs/quality.md)."""

    gold_rate: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Share of each workflow's stream that is gold clips (0 = none): after a "
        "real clip, a gold copy is added with probability rate / (1 - rate).",
    )
    gold_refresh_seconds: float = Field(
        60.0, gt=0, description="How long the dispatcher keeps its list of gold clips."
    )
    pseudonym_key: SecretStr = Field(
        SecretStr(""),
        description="Key of the worker pseudonyms the viewer role and the dataset report show "
        "(HMAC-SHA256 of the backend's worker id); set it so ids cannot be guessed back.",
    )


class ControlConfig(Group):
    """The control service (API + dashboard): where it listens, who may call it."""

    host: str = Field(
        "127.0.0.1", description="Bind address of the control service's API and dashboard."
    )
    port: int = Field(8090, ge=0, description="Port of the control service (0 = any).")
    tokens: SecretStr = Field(
        SecretStr(""),
        description="API bearer tokens, stored hashed: comma-separated `name:role:sha256hex` "
        "(role `viewer` or `operator`; `lava control token` makes one). From a Secret.",
    )
    oidc_issuer: str = Field(
        "", description="OIDC issuer whose JWTs the control service accepts (unset: none)."
    )
    oidc_audience: str = Field("", description="Audience the OIDC JWTs must name.")
    oidc_jwks_url: str = Field(
        "", description="Where the issuer's signing keys (JWKS) are fetched from."
    )
    oidc_role_claim: str = Field(
        "lava_roles", description="JWT claim holding the caller's roles (a string or a list)."
    )
    oidc_jwks_refresh_seconds: float = Field(
        300.0,
        gt=0,
        description="The JWKS is fetched at most once in this interval (a JWT naming an "
        "unknown key in between is refused without a fetch).",
    )
    oidc_jwks_timeout_seconds: float = Field(
        5.0, gt=0, description="How long one JWKS fetch may take (then it failed)."
    )
    session_seconds: float = Field(
        8 * 3600.0,
        gt=0,
        description="A dashboard session's lifetime from sign-in (server-side; ended earlier "
        "by logout or by removing its token from LAVA_CONTROL__TOKENS).",
    )
    login_form_seconds: float = Field(
        900.0, gt=0, description="How long a sign-in form (its CSRF token) stays usable."
    )
    login_attempts_per_minute: int = Field(
        10,
        ge=1,
        description="Sign-in attempts allowed per client address in a minute (every replica "
        "counts in the mutation-budget table).",
    )
    plain_localhost: bool = Field(
        False,
        description="Local runs over plain http on a loopback address only: the dashboard's "
        "cookies lose `Secure` and no HSTS is sent. Refused with any other host.",
    )
    public_origin: str = Field(
        "",
        description="The origin browsers see (`https://lava.example.com`) when a proxy "
        "rewrites Host; unset: a state-changing request's Origin must match its Host.",
    )
    hsts_seconds: int = Field(
        365 * 86400, ge=0, description="`Strict-Transport-Security` max-age (0: not sent)."
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Largest request body the control service reads."
    )
    mutations_per_minute: int = Field(
        30,
        ge=1,
        description="Mutating API calls allowed per caller in a minute from their first, "
        "counted in DynamoDB: every replica spends the same budget.",
    )
    page_max: int = Field(200, ge=1, description="Largest page a list endpoint returns.")
    export_max_clips: int = Field(
        250,
        ge=1,
        description="Most clips one dataset export may hold (its files are built in memory, "
        "~0.7 MB a busy clip); an export matching more fails with the reason.",
    )
    export_concurrency: int = Field(
        1, ge=1, description="Dataset exports one control replica runs at once."
    )
    export_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A running export's lease, renewed every third of it; an export whose "
        "replica stopped is resumed by another once its lease runs out.",
    )
    export_poll_seconds: float = Field(
        10.0, gt=0, description="How often a control replica looks for exports to run or resume."
    )
    export_max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts at an export (a replica dying mid-way costs one; one stopped by "
        "SIGTERM hands it back at no cost); then it fails with the reason.",
    )
    export_repeat_seconds: float = Field(
        600.0,
        gt=0,
        description="An export request without `export_id` repeated this soon (same format and "
        "filter) is the same export; later it starts a new one.",
    )

    @field_validator("oidc_jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError(f"the JWKS is fetched over https only (got {value!r})")
        return value

    @model_validator(mode="after")
    def _check_plain_localhost(self) -> Self:
        if self.plain_localhost and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                "LAVA_CONTROL__PLAIN_LOCALHOST is for a loopback host only "
                f"(LAVA_CONTROL__HOST is {self.host!r})"
            )
        return self


# --- loading ----------------------------------------------------------------------------------
class _StandardAwsVariables(PydanticBaseSettingsSource):
    """``AWS_ENDPOINT_URL`` and ``AWS_DEFAULT_REGION`` / ``AWS_REGION`` for the ``aws`` group,
    below its ``LAVA_AWS__*`` variables (aiobotocore and the AWS CLI read the same ones)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything happens in __call__

    def __call__(self) -> dict[str, Any]:
        if "aws" not in self.settings_cls.model_fields:
            return {}
        aws: dict[str, str] = {}
        if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
            aws["endpoint_url"] = endpoint
        if region := os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"):
            aws["region"] = region
        return {"aws": aws} if aws else {}


def _group_type(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def settings_fields(model: type[BaseModel]) -> list[tuple[str | None, str, FieldInfo]]:
    """Every setting of a model as (group or None, name, field), in declaration order."""
    found: list[tuple[str | None, str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        group = _group_type(model, name)
        if group is None:
            found.append((None, name, field))
        else:
            found.extend((name, inner, info) for inner, info in group.model_fields.items())
    return found


def env_name(group: str | None, name: str) -> str:
    """``LAVA_NAMESPACE``, ``LAVA_DISPATCH__RESEND_INTERVAL_SECONDS``."""
    return (
        f"{PREFIX}{name.upper()}" if group is None else f"{PREFIX}{group.upper()}__{name.upper()}"
    )


def _nest(overrides: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """``{"aws__endpoint_url": x}`` -> ``{"aws": {"endpoint_url": x}}``; unknown names fail."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        group, _, name = key.partition(DELIMITER)
        if group not in model.model_fields:
            raise ValueError(f"{model.__name__} has no setting or group {group!r}")
        if not name:
            nested[group] = value
            continue
        group_type = _group_type(model, group)
        if group_type is None or name not in group_type.model_fields:
            raise ValueError(f"{model.__name__} has no setting {key!r}")
        target = nested.setdefault(group, {})
        if isinstance(target, BaseModel):
            target = nested[group] = target.model_dump(exclude_unset=True)
        target[name] = value
    return nested


class LavaSettings(BaseSettings):
    """A model read from ``LAVA_*`` variables, its groups from ``LAVA_<GROUP>__<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_nested_delimiter=DELIMITER, extra="ignore", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        return (
            init_settings,
            env_settings,
            _StandardAwsVariables(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """From the environment, with explicit overrides on top (CLI options, tests):
        ``namespace="x"``, ``aws__endpoint_url="http://..."`` or a whole ``aws={...}``."""
        return cls(**_nest(overrides, cls))

    @classmethod
    def load_or_exit(cls) -> Self:
        """A service's settings from its environment. A bad value ends the process with one
        line per problem, naming the variable to fix, and exit code 2 - not a traceback, and
        not a service that starts on defaults it was not meant to have."""
        try:
            return cls.load()
        except ValidationError as exc:
            problems = [
                f"{PREFIX}{DELIMITER.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                for e in exc.errors()
            ]
        except ValueError as exc:
            problems = [str(exc)]
        for problem in problems:
            print(f"invalid settings: {problem}", file=sys.stderr)
        raise SystemExit(2)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A plain copy; changes go through :meth:`replace` (``model_copy(update=...)`` would
        skip validation and silently miss a setting inside a group)."""
        if update:
            raise TypeError(
                "settings.model_copy(update=...): use settings.replace(group__name=...)"
            )
        return super().model_copy(deep=deep)

    def replace(self, **changes: Any) -> Self:
        """A copy with some settings changed and validated again (the environment is not
        read): ``settings.replace(dispatch__resend_interval_seconds=2, namespace="t1")``.

        Unlike ``model_copy(update=...)``, a misspelt name or a value out of range fails."""
        data = self.model_dump(exclude_unset=True)
        for key, value in _nest(changes, type(self)).items():
            if isinstance(value, dict) and isinstance(data.get(key, {}), dict):
                data[key] = {**data.get(key, {}), **value}
            else:
                data[key] = value
        return self.model_validate(data)


# --- what each process loads ------------------------------------------------------------------
class ServiceSettings(LavaSettings):
    """What every process loads: the namespace, logging, the broker, AWS, the service runtime."""

    namespace: str = Field(
        "lava",
        description="Prefix of every exchange, queue, topic, table and bucket name.",
    )
    log: LogConfig = LogConfig()
    broker: BrokerConfig = BrokerConfig()
    aws: AwsConfig = AwsConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not _NAMESPACE_PATTERN.fullmatch(value):
            raise ValueError(
                "namespace must be 1-24 characters of lowercase letters, digits and hyphens, "
                f"starting with a letter (got {value!r})"
            )
        return value

    @cached_property
    def names(self) -> Namespace:
        return Namespace(self.namespace, bucket_name=self.bucket_name)

    @property
    def bucket_name(self) -> str:
        account = self.aws.account or "account-unset"
        return self.aws.bucket or f"{self.namespace}-{account}-{self.aws.region}"


class IngestSettings(ServiceSettings):
    """The ingest service."""

    ingest: IngestConfig = IngestConfig()

    @property
    def allowed_clip_buckets(self) -> frozenset[str]:
        return _csv(self.ingest.allowed_buckets) or frozenset({self.names.bucket})


class PostprocSettings(ServiceSettings):
    """The post-processing service."""

    postproc: PostprocConfig = PostprocConfig()


class LabelingSettings(ServiceSettings):
    """A process that creates, describes or serves labeling jobs."""

    labeling: LabelingConfig = LabelingConfig()
    labelstudio: LabelStudioConfig = LabelStudioConfig()


class DispatcherSettings(LabelingSettings):
    """The dispatcher."""

    dispatch: DispatchConfig = DispatchConfig()
    quality: QualityConfig = QualityConfig()


class ListenerSettings(LabelingSettings):
    """The listener."""

    listener: ListenerConfig = ListenerConfig()

    @property
    def sns_trust_store(self) -> Path | None:
        """The certificate trusted instead of SNS's: the setting, or against an emulator the
        local SNS stand-in's; None = fetch SNS's own (real AWS)."""
        if self.listener.sns_trusted_cert is not None:
            return self.listener.sns_trusted_cert
        if self.aws.endpoint_url:
            from shared.sns_signature import local_cert

            return local_cert()
        return None


class ControlSettings(DispatcherSettings):
    """The control service (it applies the dispatcher's policy to status and retries)."""

    control: ControlConfig = ControlConfig()


class Settings(ControlSettings, ListenerSettings, IngestSettings, PostprocSettings):
    """Every production group: what the `lava` CLI loads."""

    state_dir: Path = Field(
        Path(".lava"), description="Where `lava stack up` keeps pid and log files (CLI)."
    )


def load_settings(**overrides: Any) -> Settings:
    """The CLI's settings from the environment, with explicit overrides on top."""
    return Settings.load(**overrides)


def redact_url(url: str) -> str:
    """``amqp://user:password@host`` -> ``amqp://user:***@host`` (the user is no secret)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
