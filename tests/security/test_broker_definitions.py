"""Production broker definitions (issue 24, finding 10): no `guest`, no default admin, and a
row for every identity a deployment names (KEDA's scaler included).

A definitions import creates users but deletes none, so `guest` (administrator, guest/guest)
and an installation's default admin survive it; `lava deploy broker-prune` removes them. The
broker's rabbitmqctl is faked here: the machine's broker is shared and keeps its `guest`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from lava.commands.deploy import deploy
from lava.deploy.broker import FILE, OVERLAYS, users_to_delete
from shared import broker_provision

PRODUCTION = OVERLAYS / "production" / FILE


class FakeBroker:
    """rabbitmqctl list_users / delete_user on an in-memory user list."""

    def __init__(self, users: list[str]) -> None:
        self.users = list(users)

    def run(self, *args: str) -> str:
        if args[0] == "list_users":
            return json.dumps([{"user": u, "tags": []} for u in self.users])
        if args[0] == "delete_user":
            self.users.remove(args[1])
            return ""
        raise AssertionError(args)


def _document() -> dict[str, Any]:
    return dict(json.loads(PRODUCTION.read_text()))


def test_keda_has_a_row_that_reads_nothing() -> None:
    document = _document()
    (permission,) = [p for p in document["permissions"] if p["user"] == "prod-keda"]
    assert (permission["configure"], permission["write"], permission["read"]) == ("^$",) * 3
    (topic,) = [t for t in document["topic_permissions"] if t["user"] == "prod-keda"]
    assert (topic["write"], topic["read"]) == ("^$", "^$")
    assert "prod-keda" in {u["name"] for u in document["users"]}


def test_guest_and_the_default_admin_are_deleted_after_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = [u["name"] for u in _document()["users"]]
    broker = FakeBroker(["guest", "admin", "ops-break-glass", *ours])
    monkeypatch.setattr(broker_provision, "_run", broker.run)
    dry = CliRunner().invoke(deploy, ["broker-prune", str(PRODUCTION), "--keep", "ops-break-glass"])
    assert dry.exit_code == 0, dry.output
    assert "would delete broker user guest" in dry.output and "admin" in dry.output
    assert "guest" in broker.users  # a dry run deletes nothing
    done = CliRunner().invoke(
        deploy, ["broker-prune", str(PRODUCTION), "--keep", "ops-break-glass", "--apply"]
    )
    assert done.exit_code == 0, done.output
    assert sorted(broker.users) == sorted([*ours, "ops-break-glass"])
    assert users_to_delete(broker.users, _document(), ("ops-break-glass",)) == []
