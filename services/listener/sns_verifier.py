"""Is an SQS body a notification SNS really sent? The signature, checked against SNS's cert.

AWS SNS developer guide, "Verifying the signatures of Amazon SNS messages": fetch the
certificate only over HTTPS from an SNS host, never trust one the message brings along
unchecked, cache it, verify the signature over the documented string to sign. Here the
``SigningCertURL`` must be ``https://sns.<our region>.amazonaws.com/<name>.pem`` (no port, no
user, no query), fetched at most once per URL (cached, bounded) and within a size limit. A
trusted certificate (a setting) replaces fetching: the local SNS stand-in signs with its own key
(:mod:`devstack.moto_sns_signing`), and local runs trust its certificate instead.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import sns_signature
from shared.clock import Clock, SystemClock

MAX_CERT_BYTES = 16 * 1024
CACHED_CERTS = 16  # SNS rotates its certificate rarely; a handful of URLs is plenty

Fetch = Callable[[str], Awaitable[bytes]]


class UntrustedSignature(Exception):
    """The notification is not SNS's: the reason says why (the listener refuses it)."""


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched now (transient: retry later)."""


def allowed_cert_url(url: str, region: str) -> bool:
    """Whether ``url`` is an SNS signing-certificate URL of ``region``, over HTTPS."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.hostname == f"sns.{region}.amazonaws.com"
        and parts.port is None
        and not parts.username
        and not parts.query
        and not parts.fragment
        and parts.path.endswith(".pem")
        and ".." not in parts.path
    )


def load_public_key(pem: bytes, now: Any, what: str) -> rsa.RSAPublicKey:
    """The RSA key of a PEM certificate that is valid at ``now``."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise UntrustedSignature(f"{what} is not a PEM certificate") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise UntrustedSignature(f"{what} is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise UntrustedSignature(f"{what} does not hold an RSA key")
    return key


async def https_fetch(url: str, timeout: float) -> bytes:
    """The body of ``url`` (no redirects, at most :data:`MAX_CERT_BYTES`)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise CertificateUnavailable(f"GET {url} answered {response.status}")
            body = await response.content.read(MAX_CERT_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CertificateUnavailable(f"GET {url} failed: {exc!r}") from None
    if len(body) > MAX_CERT_BYTES:
        raise UntrustedSignature(f"the certificate at {url} is larger than {MAX_CERT_BYTES} B")
    return body


class SnsVerifier:
    """Verifies notification envelopes; one per listener (it holds the certificate cache)."""

    def __init__(
        self,
        region: str,
        trusted_cert: Path | None,
        fetch: Fetch,
        clock: Clock | None = None,
    ) -> None:
        self.region = region
        self.clock = clock or SystemClock()
        self._fetch = fetch
        self._trusted = self._load_trusted(trusted_cert) if trusted_cert else None
        self._cache: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    def _load_trusted(self, path: Path) -> rsa.RSAPublicKey:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"the trusted SNS certificate {path} cannot be read ({exc.strerror}): set "
                "LAVA_LISTENER__SNS_TRUSTED_CERT, or start the local moto server first (it "
                "creates ~/.cache/lava/local-sns)"
            ) from None
        return load_public_key(pem, self.clock.now(), str(path))

    async def verify(self, envelope: Mapping[str, Any]) -> None:
        """Raise :class:`UntrustedSignature` unless SNS signed this envelope."""
        url = envelope.get("SigningCertURL")
        if not isinstance(url, str) or not allowed_cert_url(url, self.region):
            raise UntrustedSignature(
                f"SigningCertURL {str(url)[:200]!r} is not https://sns.{self.region}"
                ".amazonaws.com/...pem"
            )
        key = self._trusted or await self._key(url)
        try:
            sns_signature.verify(envelope, key)
        except sns_signature.BadSignature as exc:
            raise UntrustedSignature(f"SNS signature: {exc}") from None

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # one fetch per URL, however many messages wait for it
            key = self._cache.get(url)
            if key is None:
                self.fetches += 1
                try:
                    key = load_public_key(await self._fetch(url), self.clock.now(), url)
                except Exception:
                    self._locks.pop(url, None)
                    raise
                self._cache[url] = key
                while len(self._cache) > CACHED_CERTS:
                    old, _ = self._cache.popitem(last=False)
                    self._locks.pop(old, None)
            self._cache.move_to_end(url)
            return key
