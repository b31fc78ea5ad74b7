"""Who is calling: bearer tokens stored hashed, or OIDC JWTs (issuer, audience, JWKS).

Roles: ``viewer`` reads, ``operator`` also changes things. Tokens are configured as
``name:role:sha256(token)`` (``LAVA_CONTROL__TOKENS``, from a Secret): the service never holds a
token in clear, and a presented token is hashed and looked up (its hash is as secret-free as
the configuration). In production an identity provider issues JWTs instead: the signature is
checked against the issuer's JWKS, then ``iss``, ``aud`` and ``exp``; the roles come from
``LAVA_CONTROL__OIDC_ROLE_CLAIM``. Failures say nothing about why (401 or 403, no detail).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import jwt
import structlog

from shared.settings import ControlSettings

log = structlog.get_logger(__name__)

JWKS_CACHE_SECONDS = 300.0


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


class JwksCache:
    """The issuer's signing keys, fetched at most every ``JWKS_CACHE_SECONDS`` (and at once
    when a token names a key id not seen yet: keys rotate)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if kid not in self._keys or time.monotonic() - self._fetched > JWKS_CACHE_SECONDS:
            async with self._lock:
                if kid not in self._keys or time.monotonic() - self._fetched > JWKS_CACHE_SECONDS:
                    await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.url) as response,
        ):
            response.raise_for_status()
            document = await response.json(content_type=None)
        keys = {}
        for data in document.get("keys", []):
            try:
                keys[str(data.get("kid", ""))] = jwt.PyJWK(data)
            except jwt.PyJWKError:
                continue  # a key type or algorithm this verifier does not use
        self._keys, self._fetched = keys, time.monotonic()


class Authenticator:
    def __init__(self, settings: ControlSettings) -> None:
        self.tokens = parse_tokens(settings.control.tokens.get_secret_value())
        self.issuer = settings.control.oidc_issuer
        self.audience = settings.control.oidc_audience
        self.role_claim = settings.control.oidc_role_claim
        self.jwks = JwksCache(settings.control.oidc_jwks_url) if self.issuer else None
        if self.issuer and not (self.audience and settings.control.oidc_jwks_url):
            raise ConfigError("OIDC needs LAVA_CONTROL__OIDC_AUDIENCE and _JWKS_URL too")

    async def identify(self, credential: str) -> Principal | None:
        """The caller behind a bearer credential, or None (unknown, invalid, expired)."""
        digest = hash_token(credential)
        for known, principal in self.tokens.items():
            if hmac.compare_digest(known, digest):
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
