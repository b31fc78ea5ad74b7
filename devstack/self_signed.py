"""Self-signed certificates for local stand-ins and tests: the local SNS signing key, a fake
SNS certificate, a TLS certificate for 127.0.0.1. One builder, so every copy gets the same
fields right (issuer = subject, a validity window, SHA-256)."""

from __future__ import annotations

import datetime
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def certificate(
    key: PrivateKey,
    common_name: str,
    *,
    valid_from: datetime.timedelta,
    valid_for: datetime.timedelta,
    ip: str | None = None,
) -> bytes:
    """A PEM certificate for ``key``, signed by itself, valid from ``now - valid_from`` to
    ``now + valid_for`` (negative: already expired). With ``ip`` it is also a CA for that
    address, as a TLS client's trust anchor must be."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - valid_from)
        .not_valid_after(now + valid_for)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address(ip))]), False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def private_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
