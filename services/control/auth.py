"""Who is calling: bearer tokens stored hashed, or OIDC JWTs (issuer, audience, JWKS).

Roles: ``viewer`` reads, ``operator`` also changes things. Tokens are configured as
``name:role:sha256(token)`` (``LAVA_CONTROL__TOKENS``, from a Secret): the service never holds a
token in clear, and a presented token is hashed and looked up (its hash is as secret-free as
the configuration). In production an identity provider issues JWTs instead: the signature is
checked against the issuer's JWKS (https only, fetched at most once per
``LAVA_CONTROL__OIDC_JWKS_REFRESH_SECONDS``), then ``iss``, ``aud`` and ``exp``; the roles come
from ``LAVA_CONTROL__OIDC_ROLE_CLAIM``. Failures say nothing about why (401 or 403, no detail).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import aiohttp
import jwt
import structlog

from shared.settings import ControlSettings

log = structlog.get_logger(__name__)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


RANK = {Role.VIEWER: 1, Role.OPERATOR: 2}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: str  # "token" | "oidc"

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


class ConfigError(ValueError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str, role: Role) -> tuple[str, str]:
    """A fresh random token and its configuration entry ``name:role:sha256``."""
    token = "lava_" + secrets.token_urlsafe(32)
    return token, f"{name}:{role.value}:{hash_token(token)}"


def parse_tokens(config: str) -> dict[str, Principal]:
    """``name:role:sha256hex`` entries, comma-separated -> principals by token hash."""
    found: dict[str, Principal] = {}
    for entry in filter(None, (part.strip() for part in config.split(","))):
        parts = entry.split(":")
        if len(parts) != 3:
            raise ConfigError("LAVA_CONTROL__TOKENS entries are name:role:sha256hex")
        name, role, digest = parts
        if role not in Role.__members__.values():
            raise ConfigError(f"LAVA_CONTROL__TOKENS: unknown role {role!r} for {name}")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"LAVA_CONTROL__TOKENS: {name}'s hash is not 64 hex digits")
        found[digest] = Principal(name=name, role=Role(role), via="token")
    return found


FetchJwks = Callable[[str], Awaitable[dict[str, Any]]]
JWKS_MAX_BYTES = 1 << 20  # a JWKS is a few kB; a larger answer is not one


async def fetch_jwks(url: str, timeout_seconds: float = 5.0) -> dict[str, Any]:
    """The JWKS document at ``url`` (https only, no redirects: a redirect could downgrade)."""
    if not url.startswith("https://"):
        raise ValueError("the JWKS is fetched over https only")
    body = b""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as session,
        session.get(url, allow_redirects=False) as response,
    ):
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(65536):
            body += chunk
            if len(body) > JWKS_MAX_BYTES:
                raise ValueError("the JWKS document is larger than 1 MiB")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the JWKS document is not a JSON object")
    return document


class JwksCache:
    """The issuer's signing keys, fetched at most once per ``refresh_seconds``.

    A known key id is answered from the cache at once (a due refresh runs in the background);
    an unknown one joins the fetch in flight, starts one when the interval has passed, and is
    refused at once otherwise. So tokens naming made-up key ids cost at most one fetch per
    interval, and a valid token never queues behind them.
    """

    def __init__(
        self,
        url: str,
        refresh_seconds: float,
        fetch: FetchJwks = fetch_jwks,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self.fetches = 0
        self._fetch_document = fetch
        self._now = now
        self._keys: dict[str, jwt.PyJWK] = {}
        self._tried_at: float | None = None
        self._pending: asyncio.Task[None] | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        known = self._keys.get(kid)
        if known is not None:
            if self._due():
                self._refresh()
            return known
        if self._pending is None and not self._due():
            return None
        await asyncio.shield(self._refresh())
        return self._keys.get(kid)

    def _due(self) -> bool:
        return self._tried_at is None or self._now() - self._tried_at >= self.refresh_seconds

    def _refresh(self) -> asyncio.Task[None]:
        if self._pending is None:
            self._tried_at = self._now()  # a failed fetch counts too: no retry storm
            self._pending = asyncio.create_task(self._fetch())
        return self._pending

    async def _fetch(self) -> None:
        try:
            self.fetches += 1
            document = await self._fetch_document(self.url)
            keys = {}
            for data in document.get("keys", []):
                try:
                    keys[str(data.get("kid", ""))] = jwt.PyJWK(data)
                except jwt.PyJWKError:
                    continue  # a key type or algorithm this verifier does not use
            self._keys = keys
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("jwks fetch failed", url=self.url, reason=f"{type(exc).__name__}: {exc}")
        finally:
            self._pending = None


class Authenticator:
    def __init__(self, settings: ControlSettings, fetch: FetchJwks | None = None) -> None:
        self.tokens = parse_tokens(settings.control.tokens.get_secret_value())
        self.issuer = settings.control.oidc_issuer
        self.audience = settings.control.oidc_audience
        self.role_claim = settings.control.oidc_role_claim
        refresh = settings.control.oidc_jwks_refresh_seconds
        fetch = fetch or partial(
            fetch_jwks, timeout_seconds=settings.control.oidc_jwks_timeout_seconds
        )
        self.jwks = (
            JwksCache(settings.control.oidc_jwks_url, refresh, fetch) if self.issuer else None
        )
        if self.issuer and not (self.audience and settings.control.oidc_jwks_url):
            raise ConfigError("OIDC needs LAVA_CONTROL__OIDC_AUDIENCE and _JWKS_URL too")

    def by_token_hash(self, digest: str) -> Principal | None:
        """The configured token with this SHA-256, or None (never configured, or removed)."""
        for known, principal in self.tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    async def identify(self, credential: str) -> Principal | None:
        """The caller behind a bearer credential, or None (unknown, invalid, expired)."""
        principal = self.by_token_hash(hash_token(credential))
        if principal is not None:
            return principal
        if self.jwks is not None and credential.count(".") == 2:
            return await self._from_jwt(credential)
        return None

    async def _from_jwt(self, credential: str) -> Principal | None:
        assert self.jwks is not None
        try:
            header = jwt.get_unverified_header(credential)
            key = await self.jwks.key(str(header.get("kid", "")))
            if key is None:
                log.info("jwt refused", reason="unknown key id")
                return None
            claims: dict[str, Any] = jwt.decode(
                credential,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("jwt refused", reason=type(exc).__name__)
            return None
        roles = claims.get(self.role_claim, [])
        roles = [roles] if isinstance(roles, str) else list(roles)
        best = max(
            (Role(r) for r in roles if r in Role.__members__.values()),
            key=lambda r: RANK[r],
            default=None,
        )
        if best is None:
            return None
        return Principal(name=str(claims["sub"]), role=best, via="oidc")
