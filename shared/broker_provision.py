"""Creating the broker identities of ``shared/broker_identities.py`` on a local RabbitMQ.

One ``rabbitmqctl import_definitions`` call creates (or updates) every user, its vhost
permissions and its topic permission - one call because each ``rabbitmqctl`` run starts an
Erlang VM (~1 s). Passwords are generated once per namespace and kept, readable by the owner
only, in ``<state_dir>/broker-<namespace>.json`` with each component's AMQP URL; nothing prints
them. Kubernetes renders the same table into the operator's definitions instead
(:func:`shared.broker_identities.definitions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika

from shared.broker_identities import IDENTITIES, definitions, username
from shared.settings import Settings


class BrokerAdminError(RuntimeError):
    pass


def rabbitmqctl() -> str:
    found = shutil.which("rabbitmqctl")
    if found is None:
        raise BrokerAdminError(
            "rabbitmqctl is not on PATH: run this on the broker's host (as root), or load the "
            "definitions from shared.broker_identities.definitions() another way"
        )
    return found


def _run(*args: str) -> str:
    done = subprocess.run(
        [rabbitmqctl(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise BrokerAdminError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def list_users() -> list[str]:
    """Every user of the broker (``rabbitmqctl list_users``)."""
    listed = json.loads(_run("list_users", "--formatter", "json") or "[]")
    return [str(u["user"]) for u in listed]


def delete_user(user: str) -> None:
    _run("delete_user", user)


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def url_for(base: str, user: str, password: str) -> str:
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def secrets_path(settings: Settings) -> Path:
    return settings.state_dir / f"broker-{settings.namespace}.json"


def _load_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {c: str(v["password"]) for c, v in data.items() if isinstance(v, dict)}


def _save(path: Path, entries: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(entries, out, indent=2)
    path.chmod(0o600)


async def provision_identities(
    settings: Settings, components: Iterable[str] | None = None
) -> dict[str, str]:
    """Create the namespace's broker users and permissions; each component's AMQP URL."""
    wanted = set(components) if components is not None else {i.component for i in IDENTITIES}
    path = secrets_path(settings)
    passwords = _load_passwords(path)
    for component in wanted:
        passwords.setdefault(component, secrets.token_urlsafe(24))
    passwords = {c: p for c, p in passwords.items() if c in wanted}
    base = settings.broker.amqp_url.get_secret_value()
    document = definitions(settings.names, passwords, vhost=vhost_of(base))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
        json.dump(document, tmp)
    try:
        os.chmod(tmp.name, 0o644)  # the broker's own user reads it
        await asyncio.to_thread(_run, "import_definitions", tmp.name)
    finally:
        os.unlink(tmp.name)
    urls = {
        c: url_for(base, username(settings.namespace, c), p) for c, p in sorted(passwords.items())
    }
    _save(path, {c: {"password": passwords[c], "url": u} for c, u in urls.items()})
    # The import is asynchronous: wait until every user can log in and every topic permission
    # is in place (a user without one may publish any routing key).
    await asyncio.gather(*(_wait_for_login(u) for u in urls.values()))
    await _wait_for_topic_permissions(
        vhost_of(base), {username(settings.namespace, c) for c in passwords}
    )
    return urls


async def _wait_for_topic_permissions(vhost: str, users: set[str], timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        listed = await asyncio.to_thread(_run, "list_topic_permissions", "-p", vhost, "-q")
        present = {line.split("\t", 1)[0] for line in listed.splitlines()}
        if users <= present:
            return
        if loop.time() >= deadline:
            raise BrokerAdminError(f"topic permissions missing after the import: {users - present}")
        await asyncio.sleep(0.5)


async def _wait_for_login(url: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            connection = await aio_pika.connect(url, timeout=5)
        except Exception:
            if loop.time() >= deadline:
                raise BrokerAdminError(
                    f"user {urlsplit(url).username} cannot log in after the import"
                ) from None
            await asyncio.sleep(0.2)
            continue
        await connection.close()
        return


def delete_identities(settings: Settings, components: Iterable[str] | None = None) -> None:
    """Remove the namespace's broker users (one ``rabbitmqctl eval`` call; missing ones are
    skipped) and forget their passwords."""
    wanted = list(components) if components is not None else [i.component for i in IDENTITIES]
    names = [username(settings.namespace, c) for c in wanted]
    users = ",".join(f'<<"{name}">>' for name in names)
    with contextlib.suppress(BrokerAdminError):
        _run(
            "eval",
            '[catch rabbit_auth_backend_internal:delete_user(U, <<"lava">>) '
            f"|| U <- [{users}]], ok.",
        )
    # The eval swallows per-user errors (a timeout under load): delete what is left one by one.
    listed = {line.split("\t", 1)[0] for line in _run("list_users", "-q").splitlines()}
    for name in names:
        if name in listed:
            _run("delete_user", name)
    secrets_path(settings).unlink(missing_ok=True)
