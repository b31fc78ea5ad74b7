"""The broker definitions the overlays load: one user per component of the overlay's
namespace with its permissions, and no credential in the repository."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from lava.deploy.broker import FILE, OVERLAYS, overlay_namespace, overlays, render, with_passwords
from tests.support.deploy import named, pod_spec


def test_each_overlay_has_users_of_its_namespace_with_permissions_and_no_passwords() -> None:
    assert overlays() == ["local", "production"]
    for overlay in overlays():
        document = json.loads((OVERLAYS / overlay / FILE).read_text())
        namespace = overlay_namespace(overlay)
        users = {u["name"]: u for u in document["users"]}
        assert users and all(name.startswith(f"{namespace}-") for name in users)
        assert all(u["password_hash"] == "" for u in users.values())
        assert {p["user"] for p in document["permissions"]} == set(users)
        assert {p["user"] for p in document["topic_permissions"]} == set(users)
        # only the provisioner may configure (declare) anything; every grant stays inside
        # the namespace's names
        configurers = [p["user"] for p in document["permissions"] if p["configure"] != "^$"]
        assert configurers == [f"{namespace}-provisioner"]
        for permission in document["permissions"]:
            for regex in (permission["configure"], permission["write"], permission["read"]):
                assert regex == "^$" or namespace in regex, (permission["user"], regex)


def test_passwords_are_hashed_in_where_they_live() -> None:
    document = json.loads((OVERLAYS / "local" / FILE).read_text())
    filled, given = with_passwords(
        document, "lava", {"LAVA_BROKER_PASSWORD_INGEST": "s3cret", "OTHER": "x"}
    )
    assert given == ["lava-ingest"]
    (ingest,) = [u for u in filled["users"] if u["name"] == "lava-ingest"]
    assert len(base64.b64decode(ingest["password_hash"])) == 4 + 32  # salt + SHA-256
    assert "s3cret" not in json.dumps(filled)
    assert all(u["password_hash"] == "" for u in document["users"])  # template untouched


def test_the_cli_fills_a_template_from_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "definitions.json"
    env = dict(os.environ, LAVA_NAMESPACE="lava", LAVA_BROKER_PASSWORD_DISPATCHER="pw")
    template = str(OVERLAYS / "local" / FILE)
    done = subprocess.run(
        [sys.executable, "-m", "lava", "deploy", "broker-passwords", template, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 of" in done.stdout and "lava-dispatcher" in done.stdout
    users = {u["name"]: u for u in json.loads(out.read_text())["users"]}
    assert users["lava-dispatcher"]["password_hash"]


def test_the_local_broker_loads_the_definitions_with_passwords_filled_in() -> None:
    spec = pod_spec(named("local", "Deployment", "lava-rabbitmq"))
    (init,) = spec["initContainers"]
    assert init["command"][:3] == ["lava", "deploy", "broker-passwords"]
    assert init["command"][3] == f"/definitions-template/{FILE}"


def test_the_overlays_definitions_are_rendered_from_the_identity_table() -> None:
    """One source of truth: shared.broker_identities (`python -m lava.deploy.broker` rewrites)."""
    for overlay in overlays():
        on_disk = json.loads((OVERLAYS / overlay / FILE).read_text())
        assert on_disk == render(overlay), (
            f"{overlay}: run `python -m lava.deploy.broker` to render the definitions again"
        )
