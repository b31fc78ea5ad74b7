"""Bounded request bodies and a per-caller budget of mutating calls, shared by the replicas."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.control.problems import MEDIA_TYPE, TITLES, TYPE_BASE
from shared.dynamo import conditional, from_item, to_item, values
from shared.resources import MUTATION_BUDGET

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

# Tries at opening a new window when other replicas open it at the same moment.
OPEN_TRIES = 3


class BodyLimit:
    """ASGI middleware: a body larger than ``max_bytes`` is refused with 413 before the app
    reads it (Content-Length), or as soon as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _refuse(send, scope.get("path", ""))
                    return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await _refuse(send, scope.get("path", ""))


class _TooLarge(Exception):
    pass


async def _refuse(send: Send, path: str) -> None:
    body = json.dumps(
        {
            "type": TYPE_BASE + "request-body-too-large",
            "title": TITLES[413],
            "status": 413,
            "instance": path,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class MutationBudget:
    """``per_window`` mutating calls per caller in a window of ``window`` seconds that opens
    with the caller's first call, counted in DynamoDB (``<ns>-mutation-budget``) so that
    every replica spends the same budget.

    A call costs one conditional ``ADD`` on the caller's item while its window is open and
    the count below the limit. When that condition fails, one read tells why: the window is
    spent (refused until it ends) or over (a new window is opened with a conditional put on
    the one seen, so two replicas opening it at once count once each). Items carry a TTL a
    little after their window: callers gone quiet leave nothing behind (correctness never
    waits for the TTL, which DynamoDB applies within days).
    """

    def __init__(
        self,
        aws: AwsClients,
        settings: ServiceSettings,
        per_window: int,
        now: Callable[[], float] = time.time,
        window: float = 60.0,
    ) -> None:
        self._aws = aws
        self.table = settings.names.table(MUTATION_BUDGET.name)
        self.limit = per_window
        self.window = window
        self._now = now

    async def take(self, caller: str) -> float:
        """0 when the call may proceed, else the seconds until it may."""
        db = await self._aws.dynamodb()
        key = {"caller": {"S": caller}}
        now = self._now()
        for _ in range(OPEN_TRIES):
            if await conditional(
                db.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="ADD calls :one",
                    ConditionExpression="window_end > :now AND calls < :limit",
                    ExpressionAttributeValues=values(one=1, now=now, limit=self.limit),
                )
            ):
                return 0.0
            found = await db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
            seen = from_item(found["Item"]) if "Item" in found else None
            if seen is not None and seen["window_end"] > now:
                if seen["calls"] < self.limit:
                    continue  # another replica opened a new window meanwhile: it has room
                return float(seen["window_end"]) - now
            end = now + self.window
            opened = db.put_item(
                TableName=self.table,
                Item=to_item(
                    {"caller": caller, "calls": 1, "window_end": end, "expires_at": int(end) + 60}
                ),
                **(
                    {"ConditionExpression": "attribute_not_exists(caller)"}
                    if seen is None
                    else {
                        "ConditionExpression": "window_end = :seen",
                        "ExpressionAttributeValues": values(seen=seen["window_end"]),
                    }
                ),
            )
            if await conditional(opened):
                return 0.0
            # another replica opened the new window first: count in it
        return self.window  # never seen: three replicas racing three times
