"""One factory for aiobotocore clients.

The endpoint comes from ``AWS_ENDPOINT_URL`` / ``LAVA_AWS__ENDPOINT_URL`` (moto, LocalStack) or is
real AWS when unset. Retries are botocore's own (``retry_mode`` + ``max_attempts`` from settings);
nothing here loops by hand.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from shared import fault_hooks
from shared.aws_models import use_compact_models
from shared.settings import ServiceSettings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sagemaker import SageMakerClient
    from types_aiobotocore_sns import SNSClient
    from types_aiobotocore_sqs import SQSClient

ServiceName = Literal["s3", "sns", "sqs", "dynamodb", "sagemaker"]

# (aws service, operation) -> [calls, seconds]: where a process's AWS time goes (on /metrics).
CALL_TIMES: dict[tuple[str, str], list[float]] = {}


def _before_call(context: dict[str, Any], **kwargs: Any) -> None:
    context["lava_started"] = time.perf_counter()


def _expect_bucket_owner(account: str, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
    # Every S3 call names the account that must own the bucket: should the bucket ever belong
    # to someone else (a guessable name claimed first), S3 answers 403 instead of serving or
    # accepting our data. CreateBucket/ListBuckets have no such parameter.
    shape = model.input_shape
    if shape is not None and "ExpectedBucketOwner" in shape.members:
        params.setdefault("ExpectedBucketOwner", account)


def _after_call(service: str, context: dict[str, Any], model: Any, **kwargs: Any) -> None:
    started = context.get("lava_started")
    if started is None:
        return
    entry = CALL_TIMES.setdefault((service, model.name), [0.0, 0.0])
    entry[0] += 1
    entry[1] += time.perf_counter() - started


# Error codes botocore itself treats as throttling or transient; callers that add a policy
# of their own (the dispatcher's 5 s x2 backoff) use this to tell transient from permanent.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalServerError",
        "KMSThrottlingException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether an AWS error may succeed if tried again later."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_ERROR_CODES or status >= 500
    # Connection-level failures (botocore's EndpointConnectionError and friends, timeouts).
    return isinstance(exc, (OSError, asyncio.TimeoutError)) or type(exc).__name__ in {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    }


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """One line for a failure reason: ``Code: message`` for an AWS error."""
    if isinstance(exc, ClientError):
        return f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
    return str(exc)


class AwsClients:
    """Long-lived clients, created on first use and closed together.

    >>> async with AwsClients(settings) as aws:
    ...     s3 = await aws.s3()
    """

    def __init__(self, settings: ServiceSettings, session: AioSession | None = None) -> None:
        self._settings = settings
        # botocore's models held as compact as the clients can use them (shared/aws_models.py)
        self._session = session or use_compact_models(get_session())
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.config = AioConfig(
            region_name=settings.aws.region,
            retries={
                "mode": settings.aws.retry_mode,
                "total_max_attempts": settings.aws.max_attempts,
            },
            max_pool_connections=settings.aws.max_pool_connections,
            connect_timeout=10,
            read_timeout=60,
        )

    @property
    def endpoint_url(self) -> str | None:
        return self._settings.aws.endpoint_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    def _credentials(self) -> dict[str, str]:
        # Emulators accept any credentials; real AWS uses the default provider chain.
        if self.endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
            return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return {}

    async def client(self, service: ServiceName) -> Any:
        existing = self._clients.get(service)
        if existing is not None:
            return existing
        if service == "s3" and not self._settings.aws.account:
            raise ValueError(
                "LAVA_AWS__ACCOUNT_ID must be set for real AWS: every S3 call names the account "
                "that must own the bucket (ExpectedBucketOwner)"
            )
        async with self._lock:
            if service not in self._clients:
                creator = self._session.create_client(
                    service,  # type: ignore[call-overload]
                    region_name=self._settings.aws.region,
                    endpoint_url=self.endpoint_url,
                    config=self.config,
                    **self._credentials(),
                )
                client = await self._stack.enter_async_context(creator)
                client.meta.events.register("before-call", _before_call)
                client.meta.events.register("after-call", partial(_after_call, service))
                if service == "s3":
                    client.meta.events.register(
                        "before-parameter-build.s3",
                        partial(_expect_bucket_owner, self._settings.aws.account),
                    )
                # A no-op unless a drill (python -m lava.drill) or a test installed faults.
                fault_hooks.on_aws_client(client, service)
                self._clients[service] = client
            return self._clients[service]

    async def s3(self) -> S3Client:
        client: S3Client = await self.client("s3")
        return client

    async def sns(self) -> SNSClient:
        client: SNSClient = await self.client("sns")
        return client

    async def sqs(self) -> SQSClient:
        client: SQSClient = await self.client("sqs")
        return client

    async def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = await self.client("dynamodb")
        return client

    async def sagemaker(self) -> SageMakerClient:
        client: SageMakerClient = await self.client("sagemaker")
        return client
