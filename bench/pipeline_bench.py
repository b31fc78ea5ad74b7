"""Whole-pipeline benchmark with an instant workforce (no labeling latency).

Runs the local pipeline (moto server, RabbitMQ, emulator, four services as processes), uploads
N sample clips through the rig uploader, and measures clips per minute and the latency of each
stage per task (p50/p99): ClipIngested -> task created (ingest), level 1, level 2,
LabelsFinalized -> ClipCompleted (post-processing), and end to end. Then reports where the time
goes: handler time per service and event type, and AWS time per service and operation, scraped
from every process's /metrics.

    python -m bench.pipeline_bench [--clips 8] [--size 1280x720] [--seconds 10] [--fps 1]
        [--workflows 3] [--all-jobs] [--untracked-workers] [--no-quality-records]

The pipeline is deployed with the workflows the clips ask for (their jobs registered, the
listener subscribed to them), as a deployment that runs those workflows would be;
``--all-jobs`` registers every job of the catalog instead (12 jobs: the figures before
2026-12-07 were measured so). ``--untracked-workers`` runs it with
``LAVA_LABELING__WORKER_IDENTITIES=false`` (no worker-response file read per output),
``--no-quality-records`` with ``LAVA_POSTPROC__QUALITY_RECORDS=false``: both, and the pipeline
is the one issue 22 measured, before the quality features (docs/quality.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lava.local_pipeline import LocalPipeline, PipelineConfig
from lava.sample_clips import SampleClip, SampleSpec, make_sample, upload_sample
from lava.status import snapshot
from shared.aws import AwsClients
from shared.dynamo import items
from shared.tasks.model import ClipStatus
from shared.workflows import load_catalog

WORKFLOWS = ["vehicles", "lanes", "signs_lights"]
DYNAMO_WRITES = {
    ("dynamodb", op)
    for op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels)))
        out[(name, pairs)] = float(value)
    return out


@dataclass
class Run:
    """What one run measured: when each clip was uploaded, its outcome, the tasks table at
    the end, and every process's /metrics."""

    uploaded: dict[str, float]
    states: list[ClipStatus | None]
    wall: float
    records: list[dict[str, Any]]
    metrics: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--fps", type=float, default=1)
    parser.add_argument(
        "--workflows",
        type=int,
        default=len(WORKFLOWS),
        choices=range(1, len(WORKFLOWS) + 1),
        help="how many of the workflows each clip asks for (issue 22's figure uses 2)",
    )
    parser.add_argument(
        "--all-jobs",
        action="store_true",
        help="register every job of the catalog, not only the run's workflows' jobs",
    )
    parser.add_argument(
        "--untracked-workers",
        action="store_true",
        help="LAVA_LABELING__WORKER_IDENTITIES=false: outputs name no worker (docs/quality.md)",
    )
    parser.add_argument(
        "--no-quality-records",
        action="store_true",
        help="LAVA_POSTPROC__QUALITY_RECORDS=false: no quality record per task",
    )
    return parser.parse_args()


async def main() -> int:
    args = parse_args()
    del WORKFLOWS[args.workflows :]
    width, height = (int(x) for x in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="lava-pipeline-bench-"))
    print(f"encoding {args.clips} sample clips ({args.size}, {args.seconds:g} s)...", flush=True)
    clips = [
        await asyncio.to_thread(
            make_sample,
            work / "clips",
            SampleSpec(seconds=args.seconds, width=width, height=height, seed=500 + i),
        )
        for i in range(args.clips)
    ]
    catalog = None if args.all_jobs else deployment_catalog(work / "workflows.toml", WORKFLOWS)
    extra = {"LAVA_LABELING__WORKER_IDENTITIES": "false"} if args.untracked_workers else {}
    if args.no_quality_records:
        extra["LAVA_POSTPROC__QUALITY_RECORDS"] = "false"
    run = await run_clips(work, clips, args.fps, catalog, extra)
    failed = [
        c for c, s in zip(run.uploaded, run.states, strict=True) if s is not ClipStatus.COMPLETED
    ]
    print(
        f"\n{len(run.uploaded)} clips x {len(WORKFLOWS)} workflows x 2 levels, {args.size}, "
        f"{args.seconds:g} s, {args.fps:g} frame/s, instant workforce; jobs registered: "
        + ("the whole catalog's" if catalog is None else "the run's workflows'")
        + ("; workers untracked" if args.untracked_workers else "")
        + ("; no quality records" if args.no_quality_records else "")
    )
    print(
        f"  wall {run.wall:.1f} s -> {len(run.uploaded) / run.wall * 60:.1f} clips/min; "
        f"failed: {failed}"
    )
    print("\nper-stage latency per task (s):   p50      p99")
    for name, values in stage_latencies(run.records, run.uploaded).items():
        print(f"  {name:<30} {pct(values, 0.5):7.2f}  {pct(values, 0.99):7.2f}")
    calls = print_where_the_time_goes(run.metrics)
    clip_count = len(run.uploaded)
    print_requests_per_clip(calls, clip_count, clip_count * len(WORKFLOWS) * 2)
    return 1 if failed else 0


def deployment_catalog(path: Path, workflows: list[str]) -> Path:
    """A workflows file with only ``workflows`` and their jobs (JSON arrays are TOML too)."""
    catalog = load_catalog()
    lines = []
    for name in workflows:
        for job in catalog.workflows[name].jobs():
            lines.append(f"[jobs.{job}]\ntype = {json.dumps(catalog.jobs[job].type)}")
            if catalog.jobs[job].adjusts:
                lines.append(f"adjusts = {json.dumps(catalog.jobs[job].adjusts)}")
        lines.append(f"[workflows.{name}]\nlevels = {json.dumps(catalog.workflows[name].levels)}")
    path.write_text("\n".join(lines) + "\n")
    load_catalog(path)  # the same catalog, fewer workflows: it must read back
    return path


async def run_clips(
    work: Path,
    clips: list[SampleClip],
    fps: float,
    catalog: Path | None = None,
    settings_env: dict[str, str] | None = None,
) -> Run:
    """The clips through a local pipeline with an instant workforce, until each has an outcome;
    ``catalog``: the workflows file every process reads (None: the project's); ``settings_env``:
    more settings of every process."""
    extra_env = {"LAVA_EMULATOR__POLL_SECONDS": "0.05", "LAVA_LOG__LEVEL": "WARNING"}
    extra_env.update(settings_env or {})
    if catalog is not None:
        extra_env["LAVA_LABELING__WORKFLOWS_FILE"] = str(catalog)
    config = PipelineConfig(
        namespace=f"pb{uuid.uuid4().hex[:6]}",
        run_dir=work / "run",
        worker_rate=10_000,
        latency_min=0.0,
        latency_max=0.0,
        time_scale=1e-3,
        extra_env=extra_env,
    )
    pipeline = LocalPipeline(config)
    try:  # a start that fails (a service not ready in time) stops what it started
        settings = await pipeline.start()
        uploaded: dict[str, float] = {}
        started = time.time()
        async with AwsClients(settings) as aws:
            for clip in clips:
                payload = await upload_sample(settings, clip, fps=fps, workflows=WORKFLOWS, aws=aws)
                uploaded[payload.clip_id] = time.time()
            while True:
                snap = await snapshot(aws, settings)
                states = [snap.clip_status(c) for c in uploaded]
                if all(s in (ClipStatus.COMPLETED, ClipStatus.FAILED) for s in states):
                    break
                await asyncio.sleep(0.2)
            finished = time.time()
            db = await aws.dynamodb()
            found = items(db, "scan", TableName=settings.names.table("tasks"))
            records = [item async for item in found]
        metrics = {service: scrape(p.port) for service, p in pipeline.processes.items()}
    finally:
        await pipeline.stop()
    return Run(uploaded, states, finished - started, records, metrics)


def stage_latencies(
    records: list[dict[str, Any]], uploaded: dict[str, float]
) -> dict[str, list[float]]:
    """Seconds each task spent per stage, from its history and its clip's last update."""
    tasks = [i for i in records if i.get("kind") == "task"]
    clip_items = {i["clip_id"]: i for i in records if i.get("kind") == "clip"}
    stages: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        history = {h["event"]: h["at"] for h in task["history"]}
        up = uploaded[task["clip_id"]]
        level2 = history.get("level-started")
        done = history.get("levels-done")
        final = history.get("labels-finalized")
        clip_done = float(clip_items[task["clip_id"]]["updated_at"])
        stages["ingest (ClipIngested -> task)"].append(task["created_at"] - up)
        if level2 and done:
            stages["level 1"].append(level2 - task["created_at"])
            stages["level 2"].append(done - level2)
        if final:
            stages["LabelsFinalized"].append(final - (done or final))
            stages["postproc -> ClipCompleted"].append(clip_done - final)
        stages["end to end"].append(clip_done - up)
    return stages


def print_where_the_time_goes(
    metrics: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]],
) -> dict[tuple[str, str, str], float]:
    """Handler time per service and event type, AWS time per operation; the AWS call counts."""
    print("\nhandler time per service (s, sum over the run):")
    for service, samples in metrics.items():
        for (name, labels), value in samples.items():
            if name == "lava_handler_seconds_sum" and value > 0:
                print(f"  {service:<12} {dict(labels).get('event_type', ''):<16} {value:8.2f}")
    print("\nAWS time per service and operation (s, top 15):")
    rows = []
    calls: dict[tuple[str, str, str], float] = {}
    for service, samples in metrics.items():
        for (name, labels), value in samples.items():
            d = dict(labels)
            key = (service, d.get("aws", ""), d.get("op", ""))
            if name == "lava_aws_call_seconds_total":
                rows.append((value, key))
            elif name == "lava_aws_calls_total":
                calls[key] = value
    for value, (service, aws_name, op) in sorted(rows, reverse=True)[:15]:
        n = calls.get((service, aws_name, op), 0)
        print(
            f"  {service:<12} {aws_name:<9} {op:<22} {value:8.2f} s  {n:6.0f} calls  "
            f"{value / n * 1000 if n else 0:7.1f} ms/call"
        )
    return calls


def print_requests_per_clip(
    calls: dict[tuple[str, str, str], float], clips: int, levels: int
) -> None:
    """What a clip costs in billable AWS requests, by operation (the Ground Truth emulator's
    own calls excluded: real Ground Truth bills per labeled object, not per request)."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for (service, aws_name, op), n in calls.items():
        if service != "gt-emulator":
            totals[(aws_name, op)] += n
    print(f"\nAWS requests per clip and per task level ({clips} clips, {levels} task levels):")
    for (aws_name, op), n in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {aws_name:<9} {op:<24} {n / clips:8.1f} per clip  {n / levels:7.1f} per level")
    total = sum(totals.values())
    print(f"  {'all':<34} {total / clips:8.1f} per clip  {total / levels:7.1f} per level")
    polls = totals.get(("sqs", "ReceiveMessage"), 0.0)
    print(
        f"  {'all but SQS long-polls':<34} {(total - polls) / clips:8.1f} per clip  "
        f"{(total - polls) / levels:7.1f} per level"
    )
    writes = sum(n for (aws_name, op), n in totals.items() if (aws_name, op) in DYNAMO_WRITES)
    print(
        f"  {'DynamoDB write requests':<34} {writes / clips:8.1f} per clip  "
        f"{writes / levels:7.1f} per level"
    )
    print("\nper service (requests per task level; SQS long-polls apart):")
    by_service: dict[str, float] = defaultdict(float)
    for (service, aws_name, op), n in calls.items():
        if service != "gt-emulator" and (aws_name, op) != ("sqs", "ReceiveMessage"):
            by_service[service] += n
    for service, n in sorted(by_service.items(), key=lambda item: -item[1]):
        ops = ", ".join(
            f"{op} {m / levels:.1f}"
            for (svc, _, op), m in sorted(calls.items(), key=lambda item: -item[1])
            if svc == service and m and op != "ReceiveMessage"
        )
        print(f"  {service:<12} {n / levels:6.1f}  ({ops})")
    print(
        "  the policy's minimum per task level: 1 SNS publish of the data object (a same-key\n"
        "  re-send only every LAVA_DISPATCH__RESEND_INTERVAL_SECONDS, a new key only after an\n"
        "  expiry), 1 Query to load the task (none for FramesReady) and 1 DynamoDB write: the\n"
        "  decision's commit (create, or record the output and start the next level, with the\n"
        "  send's next re-send and the counters riding along; a crash before the send brings\n"
        "  the event back, and its redelivery sends again: docs/policy.md); SQS receives are\n"
        "  long-polls, paid per 20 s of waiting, not per clip."
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
