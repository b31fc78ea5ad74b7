"""What trusting only signed SNS notifications costs: signing (the local stand-in) and
verifying (the listener) one Ground Truth output envelope, per call.

``python -m bench.sns_signature_bench`` prints microseconds per operation.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from devstack import local_sns_key
from services.listener.sns_verifier import SnsVerifier
from shared import sns_signature

ROUNDS = 2000


def _envelope(version: str) -> dict[str, str]:
    message = {"source-ref": "s3://b/clips/c/fps-1/sequence.json", "lava-dedup-id": "k" * 60}
    return {
        "Type": "Notification",
        "MessageId": "9b3a7c1e-0000-4000-8000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:lava-VOTVehicle-output",
        "Message": json.dumps(message),
        "Timestamp": "2026-12-06T10:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    }


async def main() -> None:
    key = local_sns_key.ensure(Path(tempfile.mkdtemp()) / "k")

    async def no_fetch(url: str) -> bytes:
        raise AssertionError(url)

    verifier = SnsVerifier("us-east-1", key.cert_path, no_fetch)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for version in ("1", "2"):
        envelope = _envelope(version)
        started = time.perf_counter()
        for _ in range(ROUNDS):
            envelope["Signature"] = sns_signature.sign(envelope, key.key, version)
        signing = (time.perf_counter() - started) / ROUNDS * 1e6
        started = time.perf_counter()
        for _ in range(ROUNDS):
            await verifier.verify(envelope)
        verifying = (time.perf_counter() - started) / ROUNDS * 1e6
        print(f"SignatureVersion {version}: sign {signing:.0f} us, verify {verifying:.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
