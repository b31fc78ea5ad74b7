"""Handle an event once per consumer, even when the broker delivers it again.

Delivery is at least once. Handlers make their own state transitions conditional; this guard
adds the cheap first line: a consumer records each event id it finished, skips ids it already
finished, and claims an id with a lease while it works so a concurrent duplicate (a redelivery
after a connection drop, another replica) waits instead of doing the work twice.

Work that several different events may each start (post-processing's merge of a clip, which
whichever of its tasks' events completes the set starts) names its ``holder``: the event
that claimed it. Another event finding that claim leaves at once instead of waiting - the
holder's own delivery finishes the work, or comes back to redo it (a crash, a hang past the
broker's acknowledgement timeout, a failure that releases the claim) - so a clip's second
event costs no polling. Only a delivery of the holder itself waits out a live claim.

A claim that fails its condition returns the item it found (``ReturnValuesOnConditionCheck
Failure``), so learning who holds it costs no second read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from shared.clock import Clock, SystemClock
from shared.dynamo import from_item, is_condition_failure, to_item, values
from shared.resources import PROCESSED_EVENTS

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class ClaimedElsewhere(RuntimeError):
    """Another worker holds a live claim on this event; try again later (transient)."""

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class IdempotencyGuard:
    def __init__(
        self,
        aws: AwsClients,
        settings: ServiceSettings,
        consumer: str,
        clock: Clock | None = None,
    ) -> None:
        self._aws = aws
        self._table = settings.names.table(PROCESSED_EVENTS.name)
        self._consumer = consumer
        self._ttl = settings.runtime.processed_event_ttl_seconds
        self._lease = settings.runtime.handler_lease_seconds
        self._clock = clock or SystemClock()
        self._poll = min(1.0, self._lease / 10)

    def _key(self, event_id: str) -> str:
        return f"{self._consumer}#{event_id}"

    async def run_once(
        self, event_id: str, work: Callable[[], Awaitable[None]], holder: str | None = None
    ) -> bool:
        """Run ``work`` unless this consumer already finished ``event_id``; True if it ran.

        While another worker holds a live claim on the event, this one waits (polling) for it
        to finish - then skips - or for its lease to run out - a crashed worker - then takes
        over; it gives up with :class:`ClaimedElsewhere` only after a whole lease. With a
        ``holder``, a live claim of another holder is left to it at once (module docstring).
        """
        deadline = self._clock.now().timestamp() + self._lease + self._poll
        while True:
            try:
                claimed = await self._claim(event_id, holder)
                break
            except ClaimedElsewhere as exc:
                if holder is not None and exc.holder is not None and exc.holder != holder:
                    log.info(
                        "work claimed by another event; left to it",
                        work=event_id,
                        holder=exc.holder,
                    )
                    return False
                if self._clock.now().timestamp() > deadline:
                    raise
                await self._clock.sleep(self._poll)
        if not claimed:
            log.info("duplicate event skipped", duplicate_of=event_id)
            return False
        try:
            await work()
        except BaseException:
            await self._release(event_id)
            raise
        await self._finish(event_id)
        return True

    async def _claim(self, event_id: str, holder: str | None = None) -> bool:
        db = await self._aws.dynamodb()
        now = self._clock.now().timestamp()
        claim = {
            "pk": self._key(event_id),
            "status": "claimed",
            "lease_until": now + self._lease,
            "expires_at": int(now + self._ttl),
        }
        try:
            await db.put_item(
                TableName=self._table,
                Item=to_item({**claim, **({"holder": holder} if holder else {})}),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#s = :claimed AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(claimed="claimed", now=now),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            response: dict[str, Any] = dict(exc.response)
            found: dict[str, Any] | None = response.get("Item")
        if found is None:  # a store that does not return it: read it
            got = await db.get_item(
                TableName=self._table, Key={"pk": {"S": self._key(event_id)}}, ConsistentRead=True
            )
            found = dict(got.get("Item", {}))
        item = from_item(found)
        if item.get("status") == "done":
            return False
        raise ClaimedElsewhere(
            f"event {event_id} is being handled by another worker", holder=item.get("holder")
        )

    async def _finish(self, event_id: str) -> None:
        db = await self._aws.dynamodb()
        await db.update_item(
            TableName=self._table,
            Key={"pk": {"S": self._key(event_id)}},
            UpdateExpression="SET #s = :done REMOVE lease_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values(done="done"),
        )

    async def _release(self, event_id: str) -> None:
        db = await self._aws.dynamodb()
        try:
            await db.delete_item(
                TableName=self._table,
                Key={"pk": {"S": self._key(event_id)}},
                ConditionExpression="#s = :claimed",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(claimed="claimed"),
            )
        except Exception as exc:  # the lease runs out on its own
            log.warning("could not release claim", error=repr(exc))
