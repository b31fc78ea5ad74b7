"""A long soak of the local pipeline under every fault at once; exits 1 when a bound breaks.

Throttled AWS calls, every event delivered twice and a 30% expiry storm all the time; SIGKILLs
of the services with restarts, the namespace's broker connections force-closed, streaming jobs
stopped and re-created, and poison on the bus and on an output topic at scheduled moments.
Every process's RSS, the queue depths (``rabbitmqctl list_queues``) and the outcomes mailbox are
sampled throughout; at the end the dead-letter queues are read. Bounds: 0 clips lost, 0
duplicate live tasks, exactly one outcome per clip, dead letters only the injected poison (with
reasons), each service's RSS at the end within 10% of its value after its first 20 clips.

    python -m bench.soak [--clips 200] [--minutes 20] [--report soak.json] [--keep-logs]

The run stops by itself (feed time + at most the drain time), stops its processes, deletes its
broker topology and AWS stand-in, and removes its work directory unless asked to keep it (or a
bound broke: then the logs stay and their path is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from bench.soak_plan import SoakPlan
from bench.soak_report import report_lines, summary
from bench.soak_run import SoakResult, soak
from bench.soak_verdict import broken_bounds


def parse_plan(argv: list[str]) -> tuple[SoakPlan, argparse.Namespace]:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    plan = SoakPlan()
    parser.add_argument("--clips", type=int, default=plan.clips)
    parser.add_argument("--minutes", type=float, default=plan.feed_seconds / 60)
    parser.add_argument("--drain-minutes", type=float, default=plan.drain_seconds / 60)
    parser.add_argument("--kill-every", type=float, default=plan.kill_every_seconds)
    parser.add_argument("--drop-every", type=float, default=plan.drop_every_seconds)
    parser.add_argument("--throttle", type=float, default=plan.throttle_rate)
    parser.add_argument("--expire-share", type=float, default=plan.expire_share)
    parser.add_argument("--seed", type=int, default=plan.seed)
    parser.add_argument("--report", type=Path, default=None, help="Also write the figures as JSON.")
    parser.add_argument("--keep-logs", action="store_true", help="Keep the work directory.")
    args = parser.parse_args(argv)
    chosen = replace(
        plan,
        clips=args.clips,
        feed_seconds=args.minutes * 60,
        drain_seconds=args.drain_minutes * 60,
        kill_every_seconds=args.kill_every,
        drop_every_seconds=args.drop_every,
        throttle_rate=args.throttle,
        expire_share=args.expire_share,
        seed=args.seed,
    )
    return chosen, args


def write_report(path: Path, result: SoakResult, started: datetime, broken: list[str]) -> None:
    figures = summary(result)
    figures |= {"started": started.isoformat(), "plan": asdict(result.plan), "broken": broken}
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")


async def main(argv: list[str]) -> int:
    plan, args = parse_plan(argv)
    work = Path(tempfile.mkdtemp(prefix="lava-soak-"))
    started = datetime.now(UTC)
    print(
        f"soak: {plan.clips} clips over {plan.feed_seconds / 60:g} min under every fault; "
        f"work directory {work}",
        flush=True,
    )
    main_task = asyncio.current_task()
    assert main_task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):  # a clean teardown, then exit 130
        asyncio.get_running_loop().add_signal_handler(signum, main_task.cancel)
    try:
        result = await soak(plan, work)
    except asyncio.CancelledError:
        print(f"interrupted: the pipeline is stopped and its topology deleted; logs in {work}")
        return 130
    broken = broken_bounds(result.observed)
    print("\n".join(report_lines(result, started)))
    print("\nbounds: " + ("all held" if not broken else "BROKEN"))
    for line in broken:
        print(f"  - {line}")
    if args.report:
        write_report(args.report, result, started, broken)
    if broken or args.keep_logs:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
