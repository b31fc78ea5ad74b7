"""Who may do what on the broker: one RabbitMQ user per component, declared in ONE table.

Shape (everything else - `lava stack provision`, the Kubernetes RabbitMQ definitions, the
consumers' origin check - is rendered from :data:`IDENTITIES`, never written by hand):

- :class:`BrokerIdentity` rows, one per component (``rig``, ``ingest``, ``dispatcher``,
  ``listener``, ``postproc``, ``emulator``, ``operator`` CLI, ``control`` API, ``provisioner``,
  ``keda``):
  ``publishes`` = the event types (routing keys on the topic exchange ``<ns>.events``) it may
  publish; ``consumes`` = the topology consumers whose queue it reads (it may also publish to
  that consumer's dead-letter exchange, which :meth:`shared.bus.Bus.dead_letter` does);
  ``mailboxes`` = bounded mailbox queues it may read; ``declares`` = may declare, bind and
  delete the namespace's topology (only the provisioner: services declare passively).
- :func:`username` names a component's broker user: ``<namespace>-<component>`` (users are
  global to a RabbitMQ node, so the namespace keeps environments and test runs apart).
- :func:`permissions` renders a row as RabbitMQ's three vhost regexes (configure, write, read)
  and :func:`topic_permission` as a topic permission on ``<ns>.events`` (write = the routing
  keys it may publish; read = the keys it may bind, only the provisioner binds).
- :func:`definitions` renders all rows as a RabbitMQ definitions document (``users``,
  ``permissions``, ``topic_permissions``), the format ``rabbitmqctl import_definitions`` and
  the Kubernetes RabbitMQ operator load.
- :func:`publishers` answers the consumers' question "who may publish this event type?".

RabbitMQ semantics relied on (https://www.rabbitmq.com/docs/access-control): a passive
declare needs no permission; publishing needs *write* on the exchange; consuming needs *read*
on the queue; binding needs *write* on the queue and *read* on the exchange; declaring or
deleting needs *configure*. Topic permissions apply to topic exchanges only and match the
routing key; a user with none on an exchange may use any key, so every row gets one. The
``user_id`` message property is validated by the broker against the authenticated user, so a
consumer can trust it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.names import Namespace


@dataclass(frozen=True)
class BrokerIdentity:
    component: str
    description: str
    publishes: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    mailboxes: tuple[str, ...] = ()
    declares: bool = False


IDENTITIES: tuple[BrokerIdentity, ...] = (
    BrokerIdentity("rig", "capture rig: announces uploaded clips", publishes=("ClipIngested",)),
    BrokerIdentity(
        "ingest",
        "frame extraction",
        publishes=("FramesReady", "ClipFailed"),
        consumes=("ingest",),
    ),
    BrokerIdentity(
        "dispatcher",
        "sends data objects to labeling jobs, finalizes tasks",
        publishes=("LabelsFinalized", "ClipFailed"),
        consumes=("dispatcher",),
    ),
    BrokerIdentity(
        "listener",
        "translates labeling-job outputs; the only source of level outcomes",
        publishes=("LevelCompleted", "TaskExpired", "LevelFailed"),
    ),
    BrokerIdentity(
        "postproc",
        "converts, validates and stores labels",
        publishes=("ClipCompleted", "ClipFailed"),
        consumes=("postproc",),
    ),
    # The emulator talks SNS/SQS only; its user exists so every component is accounted for.
    BrokerIdentity("emulator", "Ground Truth emulator (local runs): no broker rights"),
    BrokerIdentity(
        "operator",
        "`lava` CLI run by a person: submits clips, reads outcomes",
        publishes=("ClipIngested",),
        mailboxes=("outcomes",),
    ),
    BrokerIdentity(
        "control",
        "control API service: creates tasks from specs, reads outcomes",
        publishes=("ClipIngested",),
        mailboxes=("outcomes",),
    ),
    BrokerIdentity(
        "provisioner",
        "`lava stack provision` / the provisioning Job: declares the topology",
        declares=True,
    ),
    # KEDA's RabbitMQ scaler (overlays/production/keda.yaml) reads queue depths with a passive
    # declare, which needs no permission: it gets the vhost and nothing else.
    BrokerIdentity("keda", "KEDA's RabbitMQ scaler: reads queue depths, nothing else"),
)

BY_COMPONENT: Mapping[str, BrokerIdentity] = {i.component: i for i in IDENTITIES}


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str
    read: str


NOTHING = "^$"


def username(namespace: str, component: str) -> str:
    return f"{namespace}-{component}"


def _any_of(names: list[str]) -> str:
    if not names:
        return NOTHING
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def permissions(identity: BrokerIdentity, names: Namespace) -> Permissions:
    if identity.declares:
        # Everything of the namespace (and nothing of another one).
        mine = "^" + re.escape(f"{names.prefix}.") + ".*$"
        return Permissions(configure=mine, write=mine, read=mine)
    write = ([names.exchange] if identity.publishes else []) + [
        names.dead_letter_exchange(c) for c in identity.consumes
    ]
    read = [names.queue(c) for c in identity.consumes] + [
        names.queue(m) for m in identity.mailboxes
    ]
    return Permissions(configure=NOTHING, write=_any_of(write), read=_any_of(read))


def topic_permission(identity: BrokerIdentity, names: Namespace) -> TopicPermission:
    if identity.declares:
        return TopicPermission(names.exchange, write=NOTHING, read=".*")
    return TopicPermission(names.exchange, write=_any_of(list(identity.publishes)), read=NOTHING)


def publishers(event_type: str) -> frozenset[str]:
    """The components that may publish ``event_type``."""
    return frozenset(i.component for i in IDENTITIES if event_type in i.publishes)


def allowed_users(namespace: str, event_type: str) -> frozenset[str]:
    return frozenset(username(namespace, c) for c in publishers(event_type))


def component_of(namespace: str, user: str) -> str | None:
    """The component a broker user name stands for in ``namespace`` (None: not an identity)."""
    prefix = f"{namespace}-"
    if not user.startswith(prefix):
        return None
    component = user[len(prefix) :]
    return component if component in BY_COMPONENT else None


def identity_problem(namespace: str, user: str, component: str) -> str | None:
    """Why a ``component`` process may not run as broker ``user`` (None: it is its identity).

    A shared admin user (local ``guest``) would switch the consumers' origin check off and run
    the component with every right on the broker; only a local all-in-one run may do that."""
    if component_of(namespace, user) == component:
        return None
    return (
        f"broker user {user!r} is not the {component} identity {username(namespace, component)!r}"
        " (set LAVA_BROKER__AMQP_URL to it: `lava stack provision`; or, for a local all-in-one"
        " run only, LAVA_BROKER__LOCAL_ALL_IN_ONE=true)"
    )


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(names: Namespace, passwords: Mapping[str, str], vhost: str = "/") -> dict[str, Any]:
    """A RabbitMQ definitions document for every identity of ``names`` (``passwords`` by
    component; a component without one is left out)."""
    users: list[dict[str, Any]] = []
    perms: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    for identity in IDENTITIES:
        password = passwords.get(identity.component)
        if password is None:
            continue
        user = username(names.prefix, identity.component)
        users.append(
            {
                "name": user,
                "password_hash": password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
        )
        p = permissions(identity, names)
        perms.append(
            {
                "user": user,
                "vhost": vhost,
                "configure": p.configure,
                "write": p.write,
                "read": p.read,
            }
        )
        t = topic_permission(identity, names)
        topics.append(
            {"user": user, "vhost": vhost, "exchange": t.exchange, "write": t.write, "read": t.read}
        )
    return {"users": users, "permissions": perms, "topic_permissions": topics}
