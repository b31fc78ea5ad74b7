"""What the moto server holds, written now and then: a diagnostic for its memory.

``LAVA_MOTO_MEMORY_REPORT=<path>`` in the moto server's environment makes it append one JSON line
to ``<path>`` every ``LAVA_MOTO_MEMORY_PERIOD`` seconds (default 30): its RSS, the size of what
each AWS service keeps (S3 bytes and versions, DynamoDB items, SQS messages, SNS notifications, the
objects moto's instance tracker holds)
and, with ``LAVA_MOTO_MEMORY_TRACE=1``, the allocation sites holding the most memory
(``tracemalloc``; slows the server). Off by default; the soak's memory figures come from /proc.
"""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _regions(service: str) -> list[Any]:
    from moto.backends import get_backend

    found = []
    for account in get_backend(service).values():  # type: ignore[call-overload]
        found.extend(account.values())
    return found


def holdings() -> dict[str, Any]:
    """Sizes of what moto's S3, DynamoDB, SQS and SNS backends keep (this process)."""
    s3: dict[str, Any] = {}
    for backend in _regions("s3"):
        for name, bucket in list(backend.buckets.items()):
            versions = [key for _, keys in list(bucket.keys.iterlists()) for key in keys]
            s3[name] = {
                "keys": len(bucket.keys),
                "versions": len(versions),
                "bytes": sum(getattr(key, "size", 0) or 0 for key in versions),
            }
    dynamodb: dict[str, Any] = {}
    for backend in _regions("dynamodb"):
        for name, table in list(backend.tables.items()):
            stored = list(table.items.values())
            count = sum(len(v) for v in stored) if table.range_key_attr else len(stored)
            dynamodb[name] = {"items": count}
    sqs: dict[str, Any] = {}
    for backend in _regions("sqs"):
        for name, queue in list(backend.queues.items()):
            messages = list(queue._messages)
            sqs[name] = {
                "messages": len(messages),
                "receipts": sum(len(m._old_receipt_handles) for m in messages),
            }
    sns: dict[str, Any] = {}
    for backend in _regions("sns"):
        for arn, topic in list(backend.topics.items()):
            sns[arn.rsplit(":", 1)[-1]] = {"sent": len(topic.sent_notifications)}
    return {"s3": s3, "dynamodb": dynamodb, "sqs": sqs, "sns": sns, "tracked": tracked()}


def tracked() -> dict[str, int]:
    """How many model objects moto's instance tracker holds, per service (its dashboard's
    lists; see :mod:`devstack.moto_instances`)."""
    from moto.core.model_instances import model_data

    counts: dict[str, int] = {}
    for service, models in list(model_data.items()):
        for model in list(models.values()):
            instances: Iterable[object] = model.instances_tracked  # type: ignore[attr-defined]
            counts[service] = counts.get(service, 0) + sum(1 for _ in instances)
    return counts


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _top(limit: int = 15) -> list[str]:
    stats = tracemalloc.take_snapshot().statistics("lineno")
    return [f"{s.size / 2**20:.1f} MiB {s.count} {s.traceback[0]}" for s in stats[:limit]]


def _report(path: Path, period: float, trace: bool) -> None:
    while True:
        time.sleep(period)
        line: dict[str, Any] = {"t": time.time(), "rss_mib": round(_rss_mib(), 1)}
        try:
            line["holdings"] = holdings()
            if trace:
                line["top"] = _top()
        except Exception as exc:  # a diagnostic never stops the server
            line["error"] = repr(exc)
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")


def start_from_environment() -> bool:
    """Start the reporting thread if ``LAVA_MOTO_MEMORY_REPORT`` is set; True if started."""
    target = os.environ.get("LAVA_MOTO_MEMORY_REPORT")
    if not target:
        return False
    trace = os.environ.get("LAVA_MOTO_MEMORY_TRACE") == "1"
    if trace:
        tracemalloc.start(1)
    period = float(os.environ.get("LAVA_MOTO_MEMORY_PERIOD", "30"))
    threading.Thread(
        target=_report, args=(Path(target), period, trace), name="moto-memory", daemon=True
    ).start()
    return True
