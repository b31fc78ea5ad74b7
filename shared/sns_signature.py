"""SNS message signatures: the string to sign, signing (local stand-ins) and verifying.

AWS SNS developer guide, "Verifying the signatures of Amazon SNS messages": a Notification signs
the pairs ``Message``, ``MessageId``, ``Subject`` (only if present), ``Timestamp``, ``TopicArn``,
``Type`` in that order, each as ``name\\nvalue\\n``; ``SignatureVersion`` 1 is RSA PKCS#1 v1.5
with SHA1, 2 the same with SHA256; ``Signature`` is base64.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The local SNS stand-in's key pair, once per machine and user: the local moto server signs with
# it (devstack.local_sns_key makes it) and the listener trusts its certificate against an
# emulator endpoint. The convention lives here so the listener needs no local tooling.
LOCAL_KEY_FILE = "sns-signing-key.pem"
LOCAL_CERT_FILE = "sns-signing-cert.pem"


def local_key_dir() -> Path:
    """``$XDG_CACHE_HOME/lava/local-sns`` (``~/.cache/lava/local-sns``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lava" / "local-sns"


def local_cert() -> Path:
    return local_key_dir() / LOCAL_CERT_FILE


NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
OPTIONAL_FIELDS = frozenset({"Subject"})
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class BadSignature(Exception):
    """The envelope's signature does not verify (or cannot be checked); the text says why."""


def string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs for a Notification envelope."""
    parts: list[str] = []
    for name in NOTIFICATION_FIELDS:
        if name not in envelope and name in OPTIONAL_FIELDS:
            continue
        value = envelope.get(name)
        if not isinstance(value, str):
            raise BadSignature(f"signed field {name} is missing or not a string")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _hash(version: object) -> hashes.HashAlgorithm:
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise BadSignature(f"SignatureVersion {str(version)[:20]!r} is not 1 or 2")
    return algorithm()


def sign(envelope: Mapping[str, Any], key: rsa.RSAPrivateKey, version: str = "2") -> str:
    """The base64 ``Signature`` of an envelope signed with ``key``."""
    signature = key.sign(string_to_sign(envelope), padding.PKCS1v15(), _hash(version))
    return base64.b64encode(signature).decode("ascii")


def verify(envelope: Mapping[str, Any], public_key: rsa.RSAPublicKey) -> None:
    """Raise :class:`BadSignature` unless the envelope's signature verifies with the key."""
    algorithm = _hash(envelope.get("SignatureVersion"))
    encoded = envelope.get("Signature")
    if not isinstance(encoded, str) or not encoded:
        raise BadSignature("no Signature")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("the Signature is not base64") from None
    try:
        public_key.verify(signature, string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise BadSignature(
            "the signature does not verify with the SNS signing certificate"
        ) from None
