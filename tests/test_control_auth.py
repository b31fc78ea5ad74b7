"""Who the control service lets in: hashed bearer tokens, OIDC JWTs checked against a JWKS
fetched through the fetch port (issuer, audience, expiry, signature, roles). The mutation budget:
tests/test_control_budget.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from services.control.auth import (
    Authenticator,
    ConfigError,
    JwksCache,
    Role,
    fetch_jwks,
    new_token,
    parse_tokens,
)
from shared.settings import Settings, load_settings

ISSUER = "https://idp.example/realms/lava"
AUDIENCE = "lava-control"


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


JWKS_URL = "https://idp.example/realms/lava/certs"


class Idp:
    """The issuer's JWKS endpoint as the fetch port sees it: a document, and a count."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.document = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> dict[str, Any]:
        self.fetched.append(url)
        return self.document


@pytest.fixture
def idp(key: rsa.RSAPrivateKey) -> Idp:
    return Idp(key)


def oidc_settings(tokens: str = "", **extra: Any) -> Settings:
    return load_settings(
        control__oidc_issuer=ISSUER,
        control__oidc_audience=AUDIENCE,
        control__oidc_jwks_url=JWKS_URL,
        control__tokens=SecretStr(tokens),
        **extra,
    )


def authenticator(idp: Idp, tokens: str = "") -> Authenticator:
    return Authenticator(oidc_settings(tokens), fetch=idp.fetch)


def signed(key: rsa.RSAPrivateKey, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": now + 300,
        "iat": now,
        "lava_roles": ["viewer", "operator"],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


async def test_a_valid_jwt_names_its_caller_and_best_role(key: rsa.RSAPrivateKey, idp: Idp) -> None:
    auth = authenticator(idp)
    who = await auth.identify(signed(key))
    assert who is not None and (who.name, who.role, who.via) == ("alice", Role.OPERATOR, "oidc")
    viewer = await auth.identify(signed(key, lava_roles="viewer"))
    assert viewer is not None and viewer.role is Role.VIEWER


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 10},
        {"lava_roles": ["admin"]},
        {"lava_roles": []},
    ],
    ids=["audience", "issuer", "expired", "unknown-role", "no-role"],
)
async def test_jwts_that_do_not_hold_are_refused(
    key: rsa.RSAPrivateKey, idp: Idp, claims: dict[str, Any]
) -> None:
    auth = authenticator(idp)
    assert await auth.identify(signed(key, **claims)) is None


async def test_forged_jwts_are_refused(key: rsa.RSAPrivateKey, idp: Idp) -> None:
    auth = authenticator(idp)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await auth.identify(signed(other)) is None  # wrong signature
    assert await auth.identify(signed(key, kid="k9")) is None  # unknown key
    # algorithm confusion: HS256 with the public key as the secret
    public_pem = json.dumps(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    forged = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "lava_roles": "operator",
        },
        public_pem,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert await auth.identify(forged) is None
    unsigned = jwt.encode({"sub": "x"}, "", algorithm="none")
    assert await auth.identify(unsigned) is None


async def test_tokens_are_kept_hashed(idp: Idp) -> None:
    token, entry = new_token("otto", Role.OPERATOR)
    assert token not in entry
    auth = authenticator(idp, tokens=entry)
    who = await auth.identify(token)
    assert who is not None and (who.name, who.role, who.via) == ("otto", Role.OPERATOR, "token")
    assert await auth.identify(token + "x") is None
    assert await auth.identify(entry.split(":")[2]) is None  # the hash is not a credential


def test_token_configuration_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="name:role:sha256hex"):
        parse_tokens("otto:operator")
    with pytest.raises(ConfigError, match="unknown role 'admin'"):
        parse_tokens("otto:admin:" + "0" * 64)
    with pytest.raises(ConfigError, match="64 hex digits"):
        parse_tokens("otto:viewer:abc")


class Clock:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


async def test_the_jwks_is_fetched_at_most_once_per_interval(
    key: rsa.RSAPrivateKey, idp: Idp
) -> None:
    clock = Clock()
    cache = JwksCache(JWKS_URL, 300.0, idp.fetch, now=clock)
    assert await cache.key("k1") is not None
    for i in range(50):  # made-up key ids, within the interval: no fetch
        assert await cache.key(f"made-up-{i}") is None
    assert idp.fetched == [JWKS_URL]
    clock.at += 300.0
    assert await cache.key("made-up") is None  # the interval passed: one fetch
    assert await cache.key("made-up-again") is None
    assert len(idp.fetched) == 2


async def test_a_known_key_never_waits_for_a_refresh(key: rsa.RSAPrivateKey, idp: Idp) -> None:
    clock = Clock()
    release = asyncio.Event()

    async def slow(url: str) -> dict[str, Any]:
        if idp.fetched:
            await release.wait()  # the IdP hangs on every fetch but the first
        return await idp.fetch(url)

    cache = JwksCache(JWKS_URL, 300.0, slow, now=clock)
    assert await cache.key("k1") is not None
    clock.at += 301.0
    assert await cache.key("k1") is not None  # answered at once; the refresh starts aside
    waiting = [asyncio.create_task(cache.key(f"made-up-{i}")) for i in range(5)]
    assert await cache.key("k1") is not None  # still answered while the refresh hangs
    release.set()
    assert await asyncio.gather(*waiting) == [None] * 5
    assert len(idp.fetched) == 2


async def test_a_failed_fetch_is_not_retried_within_the_interval(idp: Idp) -> None:
    calls: list[str] = []

    async def down(url: str) -> dict[str, Any]:
        calls.append(url)
        raise aiohttp.ClientConnectionError("connection refused")

    cache = JwksCache(JWKS_URL, 300.0, down, now=Clock())
    assert [await cache.key("k1") for _ in range(10)] == [None] * 10
    assert calls == [JWKS_URL]


async def test_the_jwks_is_https_only() -> None:
    with pytest.raises(ValidationError, match="https only"):
        load_settings(control__oidc_jwks_url="http://idp.example/certs")
    with pytest.raises(ValueError, match="https only"):
        await fetch_jwks("http://127.0.0.1:9/certs")
