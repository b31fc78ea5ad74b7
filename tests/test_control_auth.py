"""Who the control service lets in: hashed bearer tokens, OIDC JWTs checked against a JWKS
served over HTTP (issuer, audience, expiry, signature, roles). The mutation budget:
tests/test_control_budget.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from services.control.auth import Authenticator, ConfigError, Role, new_token, parse_tokens
from shared.listening import listen, port_of
from shared.settings import Settings, load_settings

ISSUER = "https://idp.example/realms/lava"
AUDIENCE = "lava-control"


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def jwks_url(key: rsa.RSAPrivateKey) -> AsyncIterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    document = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/jwks", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listen()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port_of(sock)}/jwks"
    finally:
        await runner.cleanup()


def oidc_settings(jwks_url: str, tokens: str = "") -> Settings:
    return load_settings(
        control__oidc_issuer=ISSUER,
        control__oidc_audience=AUDIENCE,
        control__oidc_jwks_url=jwks_url,
        control__tokens=SecretStr(tokens),
    )


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


async def test_a_valid_jwt_names_its_caller_and_best_role(
    key: rsa.RSAPrivateKey, jwks_url: str
) -> None:
    auth = Authenticator(oidc_settings(jwks_url))
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
    key: rsa.RSAPrivateKey, jwks_url: str, claims: dict[str, Any]
) -> None:
    auth = Authenticator(oidc_settings(jwks_url))
    assert await auth.identify(signed(key, **claims)) is None


async def test_forged_jwts_are_refused(key: rsa.RSAPrivateKey, jwks_url: str) -> None:
    auth = Authenticator(oidc_settings(jwks_url))
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


async def test_tokens_are_kept_hashed(jwks_url: str) -> None:
    token, entry = new_token("otto", Role.OPERATOR)
    assert token not in entry
    auth = Authenticator(oidc_settings(jwks_url, tokens=entry))
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
