"""Dashboard sessions: a random id in the cookie, its record server-side, ended on logout.

The cookie holds a random session id, never the API token. The table (``<ns>-control-sessions``)
keys each session by the id's SHA-256, so reading the table gives nothing a browser could
present; the record names the token that signed in (by its hash, as the configuration does),
the session's CSRF token and when it ends. A session is refused once it ended
(``LAVA_CONTROL__SESSION_SECONDS`` after sign-in), once logout deleted it, and once its token
is no longer configured - every replica reads the same table.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.dynamo import from_item, to_item
from shared.resources import CONTROL_SESSIONS

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ControlSettings


@dataclass(frozen=True)
class Session:
    token_hash: str  # the configured token that signed in (LAVA_CONTROL__TOKENS' sha256)
    csrf: str  # every state-changing request of this session carries it
    expires_at: float


def _key(session_id: str) -> dict[str, dict[str, str]]:
    return {"session": {"S": hashlib.sha256(session_id.encode()).hexdigest()}}


class SessionStore:
    def __init__(
        self, aws: AwsClients, settings: ControlSettings, now: Callable[[], float]
    ) -> None:
        self._aws = aws
        self.table = settings.names.table(CONTROL_SESSIONS.name)
        self.lifetime = settings.control.session_seconds
        self._now = now

    async def open(self, token_hash: str) -> tuple[str, Session]:
        """A new session for this token: its id (for the cookie) and its record."""
        session_id = secrets.token_urlsafe(32)
        session = Session(token_hash, secrets.token_urlsafe(32), self._now() + self.lifetime)
        db = await self._aws.dynamodb()
        await db.put_item(
            TableName=self.table,
            Item={
                **_key(session_id),
                **to_item(
                    {
                        "token_hash": session.token_hash,
                        "csrf": session.csrf,
                        "ends_at": session.expires_at,
                        # DynamoDB's TTL clears old records within days; expiry never waits for it
                        "expires_at": int(session.expires_at) + 60,
                    }
                ),
            },
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": "session"},
        )
        return session_id, session

    async def find(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown, ended, logged out)."""
        if not session_id or len(session_id) > 128:
            return None
        db = await self._aws.dynamodb()
        found = await db.get_item(TableName=self.table, Key=_key(session_id), ConsistentRead=True)
        if "Item" not in found:
            return None
        item = from_item(found["Item"])
        session = Session(str(item["token_hash"]), str(item["csrf"]), float(item["ends_at"]))
        return session if session.expires_at > self._now() else None

    async def end(self, session_id: str) -> None:
        """Logout: the session is gone for every replica (a copied cookie is refused too)."""
        db = await self._aws.dynamodb()
        await db.delete_item(TableName=self.table, Key=_key(session_id))
