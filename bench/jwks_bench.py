"""The JWKS cache under made-up key ids: fetches made, and how long a valid token waits.

In process (no network): the issuer's JWKS endpoint is a function that answers after
``--latency`` seconds. Measured:
- cold start, ``--attackers`` tokens with made-up key ids sent first and a valid one behind
  them: fetches made, and the valid token's wait;
- warm, ``--storm`` made-up key ids within the refresh interval: fetches made, time per refusal;
- a due refresh hanging on the endpoint: the wait of a token whose key is cached.

    python -m bench.jwks_bench [--latency 0.2] [--attackers 5] [--storm 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from services.control.auth import JwksCache

URL = "https://idp.example/certs"


class Idp:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.fetches = 0
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.document = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    async def fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        await asyncio.sleep(self.latency)  # the endpoint's latency, simulated
        return self.document


class Clock:
    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


async def timed(lookup: Awaitable[object]) -> float:
    start = time.perf_counter()
    await lookup
    return time.perf_counter() - start


async def main(latency: float, attackers: int, storm: int) -> None:
    idp, clock = Idp(latency), Clock()
    cache = JwksCache(URL, 300.0, idp.fetch, now=clock)
    made_up = [asyncio.create_task(cache.key(f"made-up-{i}")) for i in range(attackers)]
    await asyncio.sleep(0)  # the made-up ones reach the cache first
    found = asyncio.create_task(cache.key("k1"))
    valid = await timed(found)
    await asyncio.gather(*made_up)
    print(
        f"cold start, {attackers} made-up key ids then a valid one: {idp.fetches} fetch(es); "
        f"the valid token (key found: {found.result() is not None}) waited {valid * 1000:.0f} "
        f"ms (endpoint latency {latency * 1000:.0f} ms)"
    )

    start = time.perf_counter()
    for i in range(storm):
        await cache.key(f"storm-{i}")
    spent = time.perf_counter() - start
    print(
        f"warm, {storm} made-up key ids: {idp.fetches - 1} more fetch(es), "
        f"{spent / storm * 1e6:.1f} us per refusal"
    )

    clock.at += 301.0
    refreshing = asyncio.create_task(cache.key("made-up-after-interval"))
    await asyncio.sleep(0)  # the refresh is under way
    wait = await timed(cache.key("k1"))
    await refreshing
    print(
        f"refresh due and hanging ({idp.fetches} fetches in all): a cached key answered in "
        f"{wait * 1e6:.0f} us"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--attackers", type=int, default=5)
    parser.add_argument("--storm", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.latency, args.attackers, args.storm))


if __name__ == "__main__":
    cli()
