"""The local SNS stand-in's signing key: a key and self-signed certificate on disk.

moto signs each notification with a throw-away key of its own; the project's moto server signs
with this one instead (:mod:`devstack.moto_sns_signing`), and local runs point the listener's trust
store (``LAVA_LISTENER__SNS_TRUSTED_CERT``) at its certificate. Created on first use, once per
machine and user; the private key is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.self_signed import certificate, private_pem
from shared.sns_signature import LOCAL_CERT_FILE, LOCAL_KEY_FILE, local_key_dir

# The files and their place are the listener's convention too (shared.sns_signature).
KEY_FILE = LOCAL_KEY_FILE
CERT_FILE = LOCAL_CERT_FILE
# Local only: long enough that nobody meets an expiry in a dev setup.
VALIDITY = datetime.timedelta(days=3650)
default_dir = local_key_dir


@dataclass(frozen=True)
class LocalSigningKey:
    key: rsa.RSAPrivateKey
    cert_path: Path


def _generate(directory: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = certificate(
        key, "lava local SNS stand-in", valid_from=datetime.timedelta(days=1), valid_for=VALIDITY
    )
    key_path = directory / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(private_pem(key))
    (directory / CERT_FILE).write_bytes(cert)


def ensure(directory: Path | None = None) -> LocalSigningKey:
    """The key in ``directory`` (default :func:`default_dir`), generated if absent.

    Key and certificate are written together into a fresh directory that is renamed into place,
    so two processes starting at once end up with one matching pair."""
    directory = directory or default_dir()
    if not (directory / CERT_FILE).exists() and directory.is_dir():
        _generate(directory)  # e.g. a container volume's mount point, made by one process
    elif not (directory / CERT_FILE).exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".sns-key-"))
        try:
            _generate(staging)
            with contextlib.suppress(OSError):  # another process won the race: use its pair
                staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{directory / KEY_FILE} is not an RSA private key")
    return LocalSigningKey(key=key, cert_path=directory / CERT_FILE)


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.local_sns_key DIR``: create the key pair in DIR (containers share
    it)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    print(ensure(args.directory).cert_path)


if __name__ == "__main__":
    main()
