"""Dashboard sessions against moto: they end at their expiry, on logout, and with their token;
cookies are Secure unless the settings say plain localhost (which needs a loopback host)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.control.auth import Authenticator, Role, hash_token, new_token
from services.control.cookies import CookiePolicy
from services.control.sessions import SessionStore
from shared.aws import AwsClients
from shared.settings import Settings, load_settings


class Clock:
    def __init__(self) -> None:
        self.at = 1_000.0

    def __call__(self) -> float:
        return self.at


async def test_a_session_ends_at_its_expiry_and_on_logout(
    aws: AwsClients, settings: Settings
) -> None:
    clock = Clock()
    sessions = SessionStore(aws, settings.replace(control__session_seconds=600), clock)
    first, opened = await sessions.open("a" * 64)
    second, _ = await sessions.open("a" * 64)
    assert first != second and opened.expires_at == 1_600.0
    found = await sessions.find(first)
    assert found == opened and found.csrf and found.csrf not in (first, second)
    await sessions.end(second)
    assert await sessions.find(second) is None  # logged out, for every replica
    clock.at += 599
    assert await sessions.find(first) == opened
    clock.at += 1
    assert await sessions.find(first) is None  # expired (DynamoDB's TTL is not waited for)
    assert await sessions.find("not-a-session") is None
    assert await sessions.find("x" * 4096) is None


async def test_a_session_lives_only_as_long_as_its_token_is_configured(
    aws: AwsClients, settings: Settings
) -> None:
    token, entry = new_token("otto", Role.OPERATOR)
    configured = Authenticator(settings.replace(control__tokens=SecretStr(entry)))
    sessions = SessionStore(aws, settings, Clock())
    session_id, _ = await sessions.open(hash_token(token))
    found = await sessions.find(session_id)
    assert found is not None and configured.by_token_hash(found.token_hash) is not None
    removed = Authenticator(settings.replace(control__tokens=SecretStr("")))
    assert removed.by_token_hash(found.token_hash) is None  # security.py then answers 401


def test_cookies_are_secure_unless_plain_localhost() -> None:
    assert CookiePolicy(load_settings()).name("lava_session") == "__Host-lava_session"
    local = load_settings(control__plain_localhost=True)
    assert CookiePolicy(local).name("lava_session") == "lava_session"
    with pytest.raises(ValidationError, match="loopback host only"):
        load_settings(control__plain_localhost=True, control__host="0.0.0.0")
