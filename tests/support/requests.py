"""Counting the AWS requests a piece of code makes: what each one is and what it names."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.aws import AwsClients, ServiceName


@dataclass
class Requests:
    """The requests made while :func:`counting` ran, in order: (operation, what it named)."""

    made: list[tuple[str, str]] = field(default_factory=list)

    def of(self, operation: str) -> list[str]:
        """What each request of ``operation`` named (an S3 key, a prefix, a table)."""
        return [named for op, named in self.made if op == operation]

    def operations(self) -> Counter[str]:
        return Counter(op for op, _ in self.made)


def _named(params: dict[str, Any]) -> str:
    for name in ("Key", "Prefix", "TableName", "TopicArn", "QueueUrl"):
        if name in params:
            return str(params[name])
    return ""


@asynccontextmanager
async def counting(aws: AwsClients, *services: ServiceName) -> AsyncIterator[Requests]:
    """Record every request ``aws``'s clients of ``services`` make inside the block (retries
    of one call count once: this is the request the code asked for)."""
    seen = Requests()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.made.append((model.name, _named(params)))

    clients = [await aws.client(service) for service in services]
    for client in clients:
        client.meta.events.register("before-parameter-build", record)
    try:
        yield seen
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build", record)
