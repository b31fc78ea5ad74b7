"""One typed settings object, read from ``LAVA_*`` environment variables.

Every default lives here with a one-line description; ``lava config`` prints the effective values
and the README's configuration table is generated from this model (a test keeps them in step).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.groundtruth import limits
from shared.names import Namespace

# A namespace prefix ends up in S3 bucket names (lowercase, digits, hyphens), SNS topic and
# Ground Truth job names; keep it to the intersection of their character sets.
_NAMESPACE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,23}")
_ACCOUNT_PATTERN = re.compile(r"[0-9]{12}")
_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# The account moto (and LocalStack) report for any credentials.
LOCAL_ACCOUNT = "123456789012"


class Settings(BaseSettings):
    """Runtime configuration shared by every service, the emulator and the CLI."""

    model_config = SettingsConfigDict(env_prefix="LAVA_", extra="ignore", frozen=True)

    # --- naming and environment -------------------------------------------------------------
    namespace: str = Field(
        "lava",
        description="Prefix of every exchange, queue, topic, table and bucket name.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` for production, `console` for people; `auto` picks by TTY."
    )
    log_level: str = Field("INFO", description="Minimum log level.")
    state_dir: Path = Field(
        Path(".lava"), description="Where `lava stack up` keeps pid and log files."
    )

    # --- RabbitMQ ---------------------------------------------------------------------------
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
    shutdown_grace_seconds: float = Field(
        30.0, gt=0, description="On SIGTERM, how long in-flight handlers may take to finish."
    )

    # --- AWS --------------------------------------------------------------------------------
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("LAVA_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        description="AWS endpoint (moto, LocalStack); unset = real AWS. Also `AWS_ENDPOINT_URL`.",
    )
    aws_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("LAVA_AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION"),
        description="AWS region. Also `AWS_DEFAULT_REGION` / `AWS_REGION`.",
    )
    aws_account_id: str = Field(
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
    aws_retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        "standard", description="botocore retry mode for every client."
    )
    aws_max_attempts: int = Field(
        8, ge=1, description="botocore total attempts per AWS call (the original used 8)."
    )
    aws_max_pool_connections: int = Field(32, ge=1, description="HTTP connections per AWS client.")

    fault_aws_throttle_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fault injection: share of AWS calls answered with a throttling error.",
    )
    fault_seed: int | None = Field(
        None,
        description="Fault injection: seed for the throttle draws, so a drill can be replayed "
        "(unset: a fresh random sequence per client).",
    )
    fault_duplicate_delivery: bool = Field(
        False, description="Fault injection: publish every event twice (idempotency drills)."
    )

    # --- service runtime --------------------------------------------------------------------
    health_host: str = Field(
        "127.0.0.1",
        description="Bind address of the health/metrics server (Kubernetes sets 0.0.0.0).",
    )
    health_port: int = Field(
        8080, ge=0, le=65535, description="Port of /healthz, /readyz, /metrics (0 = any free)."
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

    # --- ingest -----------------------------------------------------------------------------
    ingest_allowed_buckets: str = Field(
        "",
        description="Comma-separated buckets clips may come from; empty = the namespace bucket.",
    )
    ingest_max_bytes: int = Field(
        1024**3,
        gt=0,
        description="Largest clip file accepted, enforced while it streams to local disk "
        "(the work dir needs this much per clip at once).",
    )
    ingest_max_duration_seconds: float = Field(
        120.0, gt=0, description="Longest clip accepted (the rig sends 10 s clips)."
    )
    ingest_max_width: int = Field(4096, gt=0, description="Widest frame accepted, in pixels.")
    ingest_max_height: int = Field(2304, gt=0, description="Tallest frame accepted, in pixels.")
    ingest_min_side: int = Field(16, gt=0, description="Smallest frame side accepted.")
    ingest_codecs: str = Field(
        "h264,hevc,mpeg4,vp9,av1", description="Comma-separated video codecs accepted."
    )
    ingest_containers: str = Field(
        "mp4,mov,matroska,webm", description="Comma-separated container formats accepted."
    )
    ingest_jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of frames.")
    ingest_upload_concurrency: int = Field(
        0,
        ge=0,
        description="Frames uploaded to S3 at once per clip; 0 = as many JPEGs of the largest "
        "frame as LAVA_INGEST_JPEG_BUFFER_MB holds (4 to 16).",
    )
    ingest_concurrency: int = Field(
        0,
        ge=0,
        description="Clips processed at once per ingest process; 0 = derived from the cgroup "
        "CPU and memory limits (see README, Ingest memory).",
    )
    ingest_decode_threads: int = Field(
        0,
        ge=0,
        description="Decoder threads per clip; 0 = the usable CPUs shared among the clips "
        "(LAVA_INGEST_DECODE_MEMORY_MB may allow fewer).",
    )
    ingest_jpeg_buffer_mb: float = Field(
        8.0,
        gt=0,
        description="MiB of JPEG frames held per clip between the encoder and S3 (queued and "
        "uploading; one frame passes alone if larger).",
    )
    ingest_decode_memory_mb: float = Field(
        64.0,
        gt=0,
        description="MiB of decoded pictures per clip: caps the decoders at the clip's "
        "resolution (10 pictures each; one decoder always runs).",
    )
    ingest_work_dir: Path | None = Field(
        None, description="Where clips are downloaded for decoding (default: system temp)."
    )

    # --- labeling jobs (Ground Truth) ---------------------------------------------------------
    workflows_file: Path | None = Field(
        None, description="TOML file of workflows and jobs (default: shared/workflows.toml)."
    )
    gt_role_arn: str = Field("", description="IAM role Ground Truth assumes (SageMaker backend).")
    gt_workteam_arn: str = Field("", description="Private workteam ARN (SageMaker backend).")
    gt_task_availability_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="TaskAvailabilityLifetimeInSeconds of new jobs (AWS: 60 s - 30 days).",
    )
    gt_task_time_limit_seconds: int = Field(
        3 * 24 * 3600, ge=1, description="TaskTimeLimitInSeconds of new jobs (AWS: >= 30 s)."
    )
    gt_max_concurrent_tasks: int = Field(
        limits.DEFAULT_MAX_CONCURRENT_TASKS,
        ge=1,
        le=limits.MAX_CONCURRENT_TASKS,
        description="MaxConcurrentTaskCount of new jobs.",
    )
    gt_workers_per_object: int = Field(
        1, ge=1, le=9, description="NumberOfHumanWorkersPerDataObject of new jobs."
    )

    # --- dispatcher ---------------------------------------------------------------------------
    dedup_key_name: str = Field(
        "lava-dedup-id", description="Name of the dedup key field in Ground Truth input messages."
    )
    dispatch_resend_interval_seconds: float = Field(
        5 * 24 * 3600,
        gt=0,
        description="Re-send a waiting data object with the same key this often (beats the "
        "14-day input-queue expiry).",
    )
    dispatch_level_timeout_seconds: float = Field(
        5 * 24 * 3600,
        gt=0,
        description="Re-trigger a level (same keys) not complete within this time.",
    )
    dispatch_level_max_retriggers: int = Field(
        6, ge=0, description="After this many level re-triggers the task fails."
    )
    dispatch_max_expirations: int = Field(
        5, ge=0, description="Expirations of one data object tolerated before its task fails."
    )
    dispatch_sweep_interval_seconds: float = Field(
        30.0, gt=0, description="How often the dispatcher looks for due re-sends and timeouts."
    )
    dispatch_job_recheck_seconds: float = Field(
        60.0,
        gt=0,
        description="How often the dispatcher asks each job's backend for its status (a new job "
        "is Initializing; a streaming job stops after 10 days idle) and re-checks sends it holds "
        "for a job that is not InProgress.",
    )
    dispatch_send_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="A claimed send not confirmed within this time is retried (crash safety).",
    )
    dispatch_retry_base_seconds: float = Field(
        5.0, ge=0, description="First pause after a transient AWS error (the original: 5 s)."
    )
    dispatch_retry_factor: float = Field(
        2.0, ge=1, description="Each further pause is this many times longer."
    )
    dispatch_retry_attempts: int = Field(
        8, ge=1, description="Attempts before a transient AWS error fails the task."
    )

    # --- listener -----------------------------------------------------------------------------
    listener_wait_seconds: int = Field(
        20, ge=0, le=20, description="SQS long-poll wait per receive (max 20 s)."
    )
    listener_concurrency: int = Field(4, ge=1, description="Receive loops running at once.")
    listener_visibility_timeout_seconds: int = Field(
        60, ge=0, description="How long a received output stays hidden before it is retried."
    )
    listener_max_receive_count: int = Field(
        5, ge=1, description="Receives of one output before SQS moves it to the dead-letter queue."
    )
    listener_refresh_seconds: float = Field(
        30.0, gt=0, description="How often the listener subscribes to newly registered jobs."
    )

    # --- post-processing ----------------------------------------------------------------------
    postproc_fail_on: Literal["never", "error", "warning"] = Field(
        "error",
        description="Validation problems of this severity (or worse) fail the clip; lesser "
        "ones complete it with warnings listed in its summary.",
    )
    postproc_moved_iou: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Adjustment diff: a box whose IoU with its level-1 box is below this moved.",
    )

    # --- Ground Truth emulator ----------------------------------------------------------------
    emulator_time_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies every Ground Truth duration the emulator simulates (retention, "
        "availability lifetime); e.g. 1e-5 turns 14 days into 12 s.",
    )
    emulator_worker_rate: float = Field(
        5.0, gt=0, description="Tasks the simulated workforce starts per second, per job."
    )
    emulator_latency_min_seconds: float = Field(
        0.5, ge=0, description="Shortest time a worker takes on a task."
    )
    emulator_latency_max_seconds: float = Field(
        2.0, ge=0, description="Longest time a worker takes on a task."
    )
    emulator_expire_share: float = Field(
        0.0, ge=0, le=1, description="Share of tasks nobody takes (they expire)."
    )
    emulator_box_jitter: float = Field(
        0.0, ge=0, description="Level-1 label noise: max pixels a box edge is moved."
    )
    emulator_miss_share: float = Field(
        0.0, ge=0, le=1, description="Level-1 label noise: share of objects left out."
    )
    emulator_wrong_attribute_share: float = Field(
        0.0, ge=0, le=1, description="Level-1 label noise: share of objects with a wrong attribute."
    )
    emulator_adjust_fix_share: float = Field(
        0.8, ge=0, le=1, description="Share of level-1 mistakes an adjustment job corrects."
    )
    emulator_seed: int = Field(7, description="Seed of the emulator's choices (deterministic).")
    emulator_profile: Literal["realistic", "ideal"] = Field(
        "realistic",
        description="`realistic`: outputs as the AWS guide shows them (UUID object ids, partial "
        "attribute sets, class maps of present classes, the bare expired shape, adjustment-status "
        "only when adjusted, an Initializing period that loses input, the 10-day idle stop); "
        "`ideal`: the kinder seed behaviour, for unit tests.",
    )
    emulator_partial_attribute_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Realistic profile: share of a tracked object's later frames whose attribute "
        "set is partial or empty (the first frame of a track always has all).",
    )
    emulator_initializing_seconds: float = Field(
        300.0,
        ge=0,
        description="Realistic profile: how long a new job stays Initializing (Ground Truth time, "
        "scaled by LAVA_EMULATOR_TIME_SCALE); input published meanwhile is lost.",
    )
    emulator_idle_stop_seconds: float = Field(
        10 * 24 * 3600.0,
        ge=0,
        description="Realistic profile: a job without input this long stops by itself (Ground "
        "Truth: 10 days; scaled by LAVA_EMULATOR_TIME_SCALE; 0 = never).",
    )
    emulator_poll_seconds: float = Field(
        0.5, gt=0, description="How often the emulator checks queues, due tasks and new jobs."
    )

    # --- control service (API + dashboard) -----------------------------------------------------
    control_host: str = Field(
        "127.0.0.1", description="Bind address of the control service's API and dashboard."
    )
    control_port: int = Field(8090, ge=0, description="Port of the control service (0 = any).")
    control_tokens: SecretStr = Field(
        SecretStr(""),
        description="API bearer tokens, stored hashed: comma-separated `name:role:sha256hex` "
        "(role `viewer` or `operator`; `lava control token` makes one). From a Secret.",
    )
    control_oidc_issuer: str = Field(
        "", description="OIDC issuer whose JWTs the control service accepts (unset: none)."
    )
    control_oidc_audience: str = Field("", description="Audience the OIDC JWTs must name.")
    control_oidc_jwks_url: str = Field(
        "", description="Where the issuer's signing keys (JWKS) are fetched from."
    )
    control_oidc_role_claim: str = Field(
        "lava_roles", description="JWT claim holding the caller's roles (a string or a list)."
    )
    control_max_body_bytes: int = Field(
        65536, ge=1024, description="Largest request body the control service reads."
    )
    control_mutations_per_minute: int = Field(
        30,
        ge=1,
        description="Mutating API calls allowed per caller in a minute from their first, "
        "counted in DynamoDB: every replica spends the same budget.",
    )
    control_page_max: int = Field(200, ge=1, description="Largest page a list endpoint returns.")
    control_export_max_clips: int = Field(
        250,
        ge=1,
        description="Most clips one dataset export may hold (its files are built in memory, "
        "~0.7 MB a busy clip); an export matching more fails with the reason.",
    )
    control_export_concurrency: int = Field(
        1, ge=1, description="Dataset exports one control replica runs at once."
    )
    control_export_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A running export's lease, renewed every third of it; an export whose "
        "replica stopped is resumed by another once its lease runs out.",
    )
    control_export_poll_seconds: float = Field(
        10.0, gt=0, description="How often a control replica looks for exports to run or resume."
    )
    control_export_max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts at an export (a replica dying mid-way costs one; one stopped by "
        "SIGTERM hands it back at no cost); then it fails with the reason.",
    )
    control_export_repeat_seconds: float = Field(
        600.0,
        gt=0,
        description="An export request without `export_id` repeated this soon (same format and "
        "filter) is the same export; later it starts a new one.",
    )

    # --- Label Studio backend -----------------------------------------------------------------
    labelstudio_url: str = Field(
        "",
        description="Label Studio server (e.g. http://127.0.0.1:8081); empty = no Label Studio "
        "jobs are served.",
    )
    labelstudio_token: SecretStr = Field(
        SecretStr(""), description="API token of the Label Studio user the pipeline acts as."
    )
    labelstudio_webhook_url: str = Field(
        "",
        description="URL Label Studio posts webhooks to (the listener's webhook server); empty "
        "= no webhooks, reconciliation only.",
    )
    labelstudio_webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="Shared secret Label Studio sends in the X-Lava-Webhook-Secret header; a "
        "webhook without it is refused (an empty secret refuses every webhook).",
    )
    labelstudio_webhook_host: str = Field(
        "127.0.0.1", description="Bind address of the listener's webhook server."
    )
    labelstudio_webhook_port: int = Field(
        8091, ge=0, le=65535, description="Port of the listener's webhook server (0 = any free)."
    )
    labelstudio_reconcile_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the listener reconciles Label Studio annotations (by update "
        "time) and applies the availability lifetime; webhooks are only the fast path.",
    )
    labelstudio_time_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies the task availability lifetime the Label Studio backend "
        "applies (tests and demos shorten it).",
    )
    labelstudio_import_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long an importer's claim on a dedup key holds before another may "
        "take it over (a crashed importer).",
    )
    labelstudio_media_url_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of the presigned clip/frame URLs a task carries (SigV4: at most "
        "7 days).",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not _NAMESPACE_PATTERN.fullmatch(value):
            raise ValueError(
                "namespace must be 1-24 characters of lowercase letters, digits and hyphens, "
                f"starting with a letter (got {value!r})"
            )
        return value

    @field_validator("aws_account_id")
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

    @cached_property
    def names(self) -> Namespace:
        return Namespace(self.namespace, bucket_name=self.bucket_name)

    @property
    def account(self) -> str:
        """The AWS account that owns the bucket (moto's fixed account against an emulator)."""
        if self.aws_account_id:
            return self.aws_account_id
        if self.aws_endpoint_url:
            return LOCAL_ACCOUNT
        # Unknown: AwsClients refuses to talk to real AWS without it (see shared.aws).
        return ""

    @property
    def bucket_name(self) -> str:
        account = self.account or "account-unset"
        return self.bucket or f"{self.namespace}-{account}-{self.aws_region}"

    @staticmethod
    def _csv(value: str) -> frozenset[str]:
        return frozenset(part.strip() for part in value.split(",") if part.strip())

    @property
    def allowed_clip_buckets(self) -> frozenset[str]:
        return self._csv(self.ingest_allowed_buckets) or frozenset({self.names.bucket})

    @property
    def accepted_codecs(self) -> frozenset[str]:
        return self._csv(self.ingest_codecs)

    @property
    def accepted_containers(self) -> frozenset[str]:
        return self._csv(self.ingest_containers)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI options) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]


def redact_url(url: str) -> str:
    """``amqp://user:password@host`` -> ``amqp://user:***@host`` (the user is no secret)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
