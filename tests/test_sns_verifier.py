"""SNS signatures: string to sign, versions 1 and 2, the certificate URL allow-list, the cache."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import local_sns_key, self_signed
from services.listener.sns_verifier import SnsVerifier, UntrustedSignature, allowed_cert_url
from shared import sns_signature

URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"


def _cert(key: rsa.RSAPrivateKey, days: int = 30) -> bytes:
    return self_signed.certificate(
        key,
        "sns.amazonaws.com",
        valid_from=datetime.timedelta(days=2),
        valid_for=datetime.timedelta(days=days),
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _envelope(key: rsa.RSAPrivateKey, version: str = "2", **extra: str) -> dict[str, str]:
    body = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:lava-VOTVehicle-output",
        "Message": '{"a": 1}',
        "Timestamp": "2026-12-06T10:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": URL,
        **extra,
    }
    body["Signature"] = sns_signature.sign(body, key, version)
    return body


def _verifier(pem: bytes) -> tuple[SnsVerifier, list[str]]:
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        await asyncio.sleep(0)
        return pem

    return SnsVerifier("us-east-1", None, fetch), fetched


def test_the_string_to_sign_is_the_documented_one() -> None:
    envelope = {
        "Type": "Notification",
        "MessageId": "i",
        "TopicArn": "t",
        "Message": "m",
        "Timestamp": "ts",
        "Subject": "s",
        "Signature": "ignored",
    }
    assert sns_signature.string_to_sign(envelope) == (
        b"Message\nm\nMessageId\ni\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    )
    del envelope["Subject"]
    assert b"Subject" not in sns_signature.string_to_sign(envelope)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_signed_notification_verifies_and_the_certificate_is_fetched_once(
    key: rsa.RSAPrivateKey, version: str
) -> None:
    verifier, fetched = _verifier(_cert(key))
    await asyncio.gather(*(verifier.verify(_envelope(key, version)) for _ in range(20)))
    assert fetched == [URL]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Message": '{"a": 2}'}, "does not verify"),
        ({"TopicArn": "arn:aws:sns:us-east-1:123456789012:other"}, "does not verify"),
        ({"Subject": "added"}, "does not verify"),
        ({"SignatureVersion": "3"}, "is not 1 or 2"),
        ({"Signature": "!!!"}, "not base64"),
        ({"SigningCertURL": "http://sns.us-east-1.amazonaws.com/x.pem"}, "SigningCertURL"),
        (
            {"SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/x.pem"},
            "SigningCertURL",
        ),
        (
            {"SigningCertURL": "https://evil.example/sns.us-east-1.amazonaws.com/x.pem"},
            "SigningCertURL",
        ),
        ({"SigningCertURL": "https://sns.eu-west-1.amazonaws.com/x.pem"}, "SigningCertURL"),
    ],
)
async def test_a_changed_notification_is_untrusted(
    key: rsa.RSAPrivateKey, change: dict[str, str], reason: str
) -> None:
    verifier, _ = _verifier(_cert(key))
    envelope = {**_envelope(key), **change}
    with pytest.raises(UntrustedSignature, match=reason):
        await verifier.verify(envelope)


async def test_a_notification_signed_by_another_key_is_untrusted(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier, _ = _verifier(_cert(key))
    with pytest.raises(UntrustedSignature, match="does not verify"):
        await verifier.verify(_envelope(other))


async def test_an_expired_certificate_is_untrusted(key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier(_cert(key, days=-1))
    with pytest.raises(UntrustedSignature, match="not valid now"):
        await verifier.verify(_envelope(key))


async def test_a_trusted_certificate_replaces_fetching(tmp_path: Path) -> None:
    local = local_sns_key.ensure(tmp_path / "keys")
    assert (tmp_path / "keys" / local_sns_key.KEY_FILE).stat().st_mode & 0o077 == 0

    async def no_fetch(url: str) -> bytes:
        raise AssertionError("fetched")

    verifier = SnsVerifier("us-east-1", local.cert_path, no_fetch)
    await verifier.verify(_envelope(local.key, "1"))
    assert local_sns_key.ensure(tmp_path / "keys").cert_path == local.cert_path


def test_only_sns_hosts_of_the_region_serve_certificates() -> None:
    assert allowed_cert_url(URL, "us-east-1")
    assert not allowed_cert_url(URL.replace(".pem", ".pem?x=1"), "us-east-1")
    assert not allowed_cert_url(URL.replace("https://", "https://user@"), "us-east-1")
    assert not allowed_cert_url(URL.replace(".com/", ".com:8443/"), "us-east-1")


def test_a_missing_trusted_certificate_is_one_clear_error(tmp_path: Path) -> None:
    async def no_fetch(url: str) -> bytes:
        raise AssertionError(url)

    with pytest.raises(ValueError, match="LAVA_LISTENER__SNS_TRUSTED_CERT"):
        SnsVerifier("us-east-1", tmp_path / "missing.pem", no_fetch)
