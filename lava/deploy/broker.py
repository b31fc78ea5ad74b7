"""The RabbitMQ definitions the Kubernetes overlays give the broker.

``deploy/k8s/overlays/<overlay>/rabbitmq-definitions.json`` holds one user per component of the
overlay's namespace (``<namespace>-<component>``) with the permissions of the trust-boundaries
permission model (shared/broker_identities.py, issue 13), every ``password_hash`` empty: no
credential is stored in the repository, and a user without a hash cannot log in until it gets
one. ``lava deploy broker-passwords IN OUT`` fills the hashes from
``LAVA_BROKER_PASSWORD_<COMPONENT>`` where the passwords live (the local overlay's broker does
it in an init container).

The files are rendered from that table (:func:`render`, ``python -m lava.deploy.broker``); a
test keeps them in step with it. Importing definitions never deletes a user, so ``guest`` and
an installation's default admin stay unless removed: ``lava deploy broker-prune DEFINITIONS``
deletes every user the definitions do not name (after the import; ``--keep`` spares one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
FILE = "rabbitmq-definitions.json"
PASSWORD_VARIABLE = "LAVA_BROKER_PASSWORD_{}"


def overlay_namespace(overlay: str) -> str:
    """The LAVA_NAMESPACE an overlay's services run with (base settings, or the overlay's
    patch of them)."""
    import yaml  # dev tooling only (lava.deploy.locks.LOCAL_ONLY_IMPORTS)

    base = yaml.safe_load((ROOT / "deploy/k8s/base/settings.yaml").read_text())
    namespace = str(base["data"]["LAVA_NAMESPACE"])
    kustomization = yaml.safe_load((OVERLAYS / overlay / "kustomization.yaml").read_text())
    for patch in kustomization.get("patches", []):
        if patch.get("target", {}).get("name") != "lava-settings":
            continue
        for op in yaml.safe_load(patch["patch"]):
            if op["path"] == "/data/LAVA_NAMESPACE":
                namespace = str(op["value"])
    return namespace


def overlays() -> list[str]:
    return sorted(p.parent.name for p in OVERLAYS.glob(f"*/{FILE}"))


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def with_passwords(
    document: dict[str, Any], namespace: str, environ: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """``document`` with each user's hash from its component's password variable; the users
    that got one. A user whose variable is unset keeps an empty hash (it cannot log in)."""
    environ = dict(os.environ) if environ is None else environ
    filled = json.loads(json.dumps(document))
    given = []
    prefix = f"{namespace}-"
    for user in filled["users"]:
        if not user["name"].startswith(prefix):
            raise ValueError(f"{user['name']} is no broker user of namespace {namespace!r}")
        component = user["name"][len(prefix) :]
        password = environ.get(PASSWORD_VARIABLE.format(component.upper().replace("-", "_")))
        if password:
            user["password_hash"] = password_hash(password)
            given.append(user["name"])
    return filled, given


def render(overlay: str) -> dict[str, Any]:
    """The overlay's definitions from ``shared.broker_identities``, every hash left empty."""
    from shared.broker_identities import IDENTITIES, definitions
    from shared.names import Namespace

    rendered = definitions(
        Namespace(overlay_namespace(overlay)), {i.component: "" for i in IDENTITIES}
    )
    for user in rendered["users"]:
        user["password_hash"] = ""  # no credential in the repository
    return {"vhosts": [{"name": "/"}], **rendered}


def users_to_delete(
    existing: list[str], document: dict[str, Any], keep: tuple[str, ...]
) -> list[str]:
    """The broker users the definitions do not name (``guest``, a default admin, a leftover):
    a definitions import creates and updates users but never deletes one."""
    named = {u["name"] for u in document["users"]} | set(keep)
    return sorted(u for u in existing if u not in named)


def write_all() -> list[Path]:
    written = []
    for overlay in overlays():
        path = OVERLAYS / overlay / FILE
        path.write_text(json.dumps(render(overlay), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_all():
        print(f"wrote {written.relative_to(ROOT)}")
