"""Dataset index benchmark: query times over tens of thousands of clips (moto server).

python -m bench.dataset_bench [--clips 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from typing import Any

from devstack.local_stack import MotoServer
from shared.aws import AwsClients
from shared.dataset.index import DatasetIndex, IndexEntry, parse_where
from shared.dynamo import to_item
from shared.resources import provision
from shared.settings import load_settings
from shared.taxonomy.vocabulary import Scene, TimeOfDay, Traffic, Weather


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20000)
    args = parser.parse_args()
    server = MotoServer(port=0)
    server.start()
    try:
        settings = load_settings(
            namespace=f"ds{uuid.uuid4().hex[:6]}", aws__endpoint_url=server.endpoint
        )
        rng = random.Random(1)
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            db = await aws.dynamodb()
            table = settings.names.table("dataset")
            started = time.perf_counter()
            items: list[Any] = []
            for i in range(args.clips):
                entry = IndexEntry(
                    clip_id=f"clip-{i:06d}",
                    drive_id=f"d{i % 300}",
                    weather=rng.choice(list(Weather)).value,
                    time_of_day=rng.choice(list(TimeOfDay)).value,
                    route="A1",
                    scene=rng.choice(list(Scene)).value,
                    traffic=rng.choice(list(Traffic)).value,
                    traffic_density="low",
                    frames=10,
                    objects_per_class={"vehicle": rng.randint(0, 60), "lane": 30},
                    tracks_per_class={"vehicle": 4},
                    labels_uri="s3://b/l.json",
                    summary_uri="s3://b/s.json",
                    completed_at=0.0,
                )
                items.append(
                    {
                        "PutRequest": {
                            "Item": to_item({**entry.model_dump(mode="json"), "sk": "clip"})
                        }
                    }
                )
            for start in range(0, len(items), 25):
                await db.batch_write_item(RequestItems={table: items[start : start + 25]})
            print(f"loaded {args.clips} index entries in {time.perf_counter() - started:.1f} s")
            index = DatasetIndex(aws, settings)
            for conditions in (
                ["weather=rainy", "time_of_day=night", "scene=intersection"],
                ["weather=rainy"],
                ["traffic=stop-and-go"],  # no indexed attribute: a filtered scan
            ):
                started = time.perf_counter()
                found = await index.query(parse_where(conditions))
                took = time.perf_counter() - started
                print(f"query {' '.join(conditions):<55} {len(found):>6} clips  {took:6.2f} s")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
