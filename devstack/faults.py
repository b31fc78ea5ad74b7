"""Fault injection for drills and end-to-end tests: throttled AWS calls at the client, every
event published twice.

Opt-in only: a production service never loads these settings nor imports this module; it
reaches the injector through :mod:`shared.fault_hooks`, where :func:`enable` installs it.
``python -m lava.drill services.<name>`` (what ``lava run``/the local runner use when a run
asks for faults) loads :class:`FaultSettings` from ``LAVA_FAULT__*`` and :func:`enable` s them
for the process before the service starts; tests use :func:`injecting`. Without that,
``LAVA_FAULT__*`` variables in the environment change nothing.

With ``aws_throttle_rate`` above zero, that share of AWS requests never leaves the process: a
botocore ``before-send`` hook answers them with the service's own throttling error
(``ThrottlingException`` for JSON services, ``Throttling`` for SNS, ``SlowDown`` for S3), so the
ordinary retry machinery - botocore's, then the services' - has to cope.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse
from botocore.awsrequest import HTTPHeaders
from pydantic import Field

from shared import fault_hooks
from shared.settings import Group, LavaSettings

INJECTED: dict[str, int] = {}  # service -> throttles injected (exported on /metrics)


class FaultConfig(Group):
    """Fault injection for drills and end-to-end tests."""

    aws_throttle_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of AWS calls answered with a throttling error.",
    )
    seed: int | None = Field(
        None,
        description="Seed for the throttle draws, so a drill can be replayed (unset: a fresh "
        "random sequence per client).",
    )
    duplicate_delivery: bool = Field(
        False, description="Publish every event twice (idempotency drills)."
    )


class FaultSettings(LavaSettings):
    """What a drill loads (``LAVA_FAULT__*``), beside the service's own settings."""

    fault: FaultConfig = FaultConfig()


NONE = FaultConfig()
_enabled = NONE


class _Injector:
    """The :class:`shared.fault_hooks.FaultInjector` of one :class:`FaultConfig`."""

    def __init__(self, faults: FaultConfig) -> None:
        self._faults = faults

    def on_aws_client(self, client: Any, service: str) -> None:
        if self._faults.aws_throttle_rate > 0:
            rate, seed = self._faults.aws_throttle_rate, self._faults.seed
            install_throttling(client, service, rate, seed=seed)

    def duplicate_delivery(self) -> bool:
        return self._faults.duplicate_delivery

    def injected(self, service: str) -> int:
        return INJECTED.get(service, 0)


def enable(faults: FaultConfig) -> None:
    """Inject ``faults`` into this process's AWS clients and bus from now on."""
    global _enabled
    _enabled = faults
    fault_hooks.install(None if faults == NONE else _Injector(faults))


def enabled() -> FaultConfig:
    """The faults this process injects (none unless :func:`enable` was called)."""
    return _enabled


@contextmanager
def injecting(faults: FaultConfig) -> Iterator[None]:
    """Faults enabled for the duration of a block (tests)."""
    before = _enabled
    enable(faults)
    try:
        yield
    finally:
        enable(before)


class _ThrottleBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, *args: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def _throttle(service: str, url: str) -> AioAWSResponse:
    if service == "s3":
        status = 503
        body = (
            b"<Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>"
        )
        headers = {"Content-Type": "application/xml"}
    elif service == "sns":
        status = 400
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error>"
            b"<RequestId>injected</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    else:  # the JSON-protocol services: dynamodb, sqs, sagemaker
        status = 400
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded (injected)"}'
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AioAWSResponse(url, status, HTTPHeaders.from_dict(headers), _ThrottleBody(body))


def install_throttling(client: Any, service: str, rate: float, seed: int | None = None) -> None:
    """Answer ``rate`` of this client's requests with a throttling error.

    With a ``seed`` the draws are the same in every process and run (a string seed is hashed
    with SHA-512, not Python's salted ``hash``), one sequence per AWS service.
    """
    rng = random.Random(f"{seed}:{service}" if seed is not None else None)

    def before_send(request: Any, **kwargs: Any) -> AioAWSResponse | None:
        if rng.random() >= rate:
            return None
        INJECTED[service] = INJECTED.get(service, 0) + 1
        return _throttle(service, request.url)

    client.meta.events.register("before-send", before_send)
