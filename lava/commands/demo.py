"""`lava demo`: the whole pipeline on this machine, on generated sample clips.

Starts a moto server, provisions the namespace, registers the streaming jobs on the Ground
Truth emulator, starts the four services and the emulator as processes, generates sample clips,
uploads them through the capture-rig uploader, shows live progress per stage, and ends with a
table of the clips and their summaries. Before stopping everything it started, it copies the
results (LAVA labels, summaries, the dataset report, exports, logs) into a local folder, since
the emulated S3 goes away with it. Exits non-zero if a clip failed that should not have.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lava.commands import backend_option, frame_size, workforce_options
from shared.settings import redact_url
from shared.tasks.model import ClipStatus, TaskStatus

if TYPE_CHECKING:
    from rich.table import Table

    from lava.local_pipeline import LocalPipeline, PipelineConfig
    from lava.status import Snapshot
    from shared.settings import Settings
    from shared.workflows import WorkflowCatalog

DEFAULT_WORKFLOWS = ("vehicles", "lanes", "signs_lights")


@click.command()
@click.option(
    "--clips",
    "clip_count",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="How many sample clips to generate and upload.",
)
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    default=DEFAULT_WORKFLOWS,
    show_default=True,
    help="Repeatable; see shared/workflows.toml.",
)
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Clip length.")
@click.option(
    "--size", default="960x540", show_default=True, callback=frame_size, help="Clip WIDTHxHEIGHT."
)
@click.option("--fps", type=float, default=1.0, show_default=True, help="Frames/s to label.")
@workforce_options(worker_rate=20.0, expire_share=0.1)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="Level-1 label noise (missed objects, wrong attributes, jitter) for the "
    "adjustment level to correct.",
)
@click.option(
    "--time-scale",
    type=float,
    default=2e-5,
    show_default=True,
    help="Scales Ground Truth's and the dispatcher's day-long durations.",
)
@click.option(
    "--with-bad-clip",
    is_flag=True,
    help="Also upload a truncated clip, which must end as ClipFailed.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results folder (default: lava-results-<time>).",
)
@backend_option
@click.option(
    "--timeout",
    type=float,
    default=600,
    show_default=True,
    help="Seconds to wait for every clip to complete or fail.",
)
def demo(
    clip_count: int,
    workflows: tuple[str, ...],
    seconds: float,
    size: tuple[int, int],
    fps: float,
    worker_rate: float,
    expire_share: float,
    noise: float,
    time_scale: float,
    with_bad_clip: bool,
    out_dir: Path | None,
    backend: str,
    timeout: float,
) -> None:
    """Run the local pipeline end to end and keep its results."""
    from shared.logging import configure_logging
    from shared.settings import load_settings

    configure_logging(load_settings(log__level="WARNING"), "demo")
    options = DemoOptions(
        clip_count=clip_count,
        workflows=list(workflows),
        seconds=seconds,
        size=size,
        fps=fps,
        worker_rate=worker_rate,
        expire_share=expire_share,
        noise=noise,
        time_scale=time_scale,
        with_bad_clip=with_bad_clip,
        out=out_dir or Path(f"lava-results-{datetime.now():%Y%m%d-%H%M%S}"),
        timeout=timeout,
        backend=backend,
    )
    options.out.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(_demo(options)))


@dataclass(frozen=True)
class DemoOptions:
    """What `lava demo` was asked for (its options, one field each)."""

    clip_count: int
    workflows: list[str]
    seconds: float  # clip length
    size: tuple[int, int]  # clip width, height
    fps: float  # frames/s to label
    worker_rate: float  # simulated workforce: tasks started per second per job
    expire_share: float  # share of tasks nobody takes
    noise: float  # level-1 label noise for the adjustment level to correct
    time_scale: float
    with_bad_clip: bool
    out: Path  # the results folder
    timeout: float
    backend: str = "emulator"

    def pipeline_config(self) -> PipelineConfig:
        from lava.local_pipeline import PipelineConfig

        return PipelineConfig(
            namespace=f"demo{uuid.uuid4().hex[:6]}",
            run_dir=self.out / "logs",
            time_scale=self.time_scale,
            worker_rate=self.worker_rate,
            expire_share=self.expire_share,
            miss_share=self.noise / 2,
            wrong_attribute_share=self.noise / 2,
            box_jitter=6.0 * self.noise,
            backend="labelstudio" if self.backend == "labelstudio" else "emulator",
        )


async def _demo(options: DemoOptions) -> int:
    """Exit code: 0 when every clip completed (and the bad clip failed), 1 when not, 2 when
    the demo could not start."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    catalog = await _preflight(console, options)
    if catalog is None:
        return 2
    return await _run(console, options, catalog)


async def _preflight(console: Any, options: DemoOptions) -> WorkflowCatalog | None:
    """The workflow catalog if the demo can run; None (the reason printed) if it cannot."""
    from devstack.local_stack import RABBITMQ_START_HINT
    from lava.commands.stack import broker_problem
    from shared.settings import load_settings
    from shared.workflows import load_catalog

    problem = await broker_problem(load_settings())
    if problem:
        console.print(
            f"[red]RabbitMQ is not reachable ({problem}).[/red] "
            f"Start it with: {RABBITMQ_START_HINT}"
        )
        return None
    catalog = load_catalog()
    for workflow in options.workflows:
        if workflow not in catalog.workflows:
            console.print(
                f"[red]unknown workflow {workflow!r}[/red] (known: {', '.join(catalog.workflows)})"
            )
            return None
    if options.backend == "labelstudio":
        from shared.labeling.labelstudio.server import installed

        if not installed():
            console.print(
                "[red]Label Studio is not installed.[/red] Install it once (its own venv): "
                "bash scripts/labelstudio.sh"
            )
            return None
    return catalog


async def _run(console: Any, options: DemoOptions, catalog: WorkflowCatalog) -> int:
    """Start the pipeline, send the clips through, report; stop everything whatever happens."""
    from lava.local_pipeline import LocalPipeline

    out, workflows = options.out, options.workflows
    run = LocalPipeline(options.pipeline_config())
    console.print(
        f"[bold]LAVA demo[/bold]: {options.clip_count} clip(s) x {', '.join(workflows)}; "
        f"results in {out}/"
    )
    try:
        with console.status("starting moto, provisioning, registering jobs, starting services"):
            settings = await run.start()
        _print_started(console, run, settings)
        clips, bad = await _make_clips(
            console, out, options.clip_count, options.seconds, options.size, options.with_bad_clip
        )
        ids, bad_id = await _upload(settings, clips, bad, workflows, options.fps)
        console.print(
            f"  uploaded {len(ids)} clip(s) through the capture-rig uploader"
            + (" (+1 truncated clip that must fail)" if bad_id else "")
        )
        bad_ids = [bad_id] if bad_id else []
        snap = await _progress(console, settings, ids, bad_ids, catalog, options)
        failed = [c for c in ids if snap.clip_status(c) is not ClipStatus.COMPLETED]
        bad_ok = bad_id is None or snap.clip_status(bad_id) is ClipStatus.FAILED
        await _report(console, settings, ids, snap, out)
        if failed:
            console.print(f"[red]{len(failed)} clip(s) did not complete:[/red] {failed}")
        if not bad_ok:
            console.print("[red]the truncated clip did not fail as it should[/red]")
        return 0 if not failed and bad_ok else 1
    finally:
        codes = await run.stop()
        console.print(f"stopped everything (exit codes {codes}); results kept in {out}/")


def _print_started(console: Any, run: LocalPipeline, settings: Settings) -> None:
    labeling = (
        "a simulated annotator up"
        if run.config.backend == "labelstudio"
        else "the Ground Truth emulator up"
    )
    console.print(
        f"  AWS (moto) {run.moto.endpoint if run.moto else ''}, RabbitMQ "
        f"{redact_url(settings.broker.amqp_url.get_secret_value()).split('@')[-1]}, "
        f"namespace {settings.namespace}; ingest, dispatcher, listener, postproc and {labeling}"
    )
    if run.labelstudio is not None:
        login = (
            f"; log in as {run.labelstudio.user} / {run.labelstudio.password}"
            if run.labelstudio.password
            else ""
        )
        console.print(
            f"  Label Studio {run.labelstudio.url} (started in "
            f"{run.labelstudio.start_seconds:.1f} s{login})"
        )


async def _make_clips(
    console: Any, out: Path, count: int, seconds: float, size: tuple[int, int], with_bad: bool
) -> tuple[list[Any], Path | None]:
    from lava.sample_clips import SampleSpec, make_sample

    clips = []
    with console.status(f"encoding {count} sample clip(s)"):
        for i in range(count):
            spec = SampleSpec(seconds=seconds, width=size[0], height=size[1], seed=100 + i)
            clips.append(await asyncio.to_thread(make_sample, out / "clips", spec))
    bad = None
    if with_bad:
        bad = out / "clips" / "truncated.mp4"
        data = clips[0].video.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    console.print(
        f"  generated {len(clips)} clip(s) {size[0]}x{size[1]}, {seconds:g} s, "
        "with ground-truth sidecars"
    )
    return clips, bad


async def _upload(
    settings: Any, clips: list[Any], bad: Path | None, workflows: list[str], fps: float
) -> tuple[list[str], str | None]:
    from lava.rig import upload_clip
    from lava.sample_clips import upload_sample
    from shared.aws import AwsClients

    ids = []
    async with AwsClients(settings) as aws:
        for clip in clips:
            payload = await upload_sample(settings, clip, fps=fps, workflows=workflows, aws=aws)
            ids.append(payload.clip_id)
        bad_id = None
        if bad is not None:
            first = clips[0].labels
            payload = await upload_clip(
                settings,
                bad,
                first.drive,
                first.clip.attributes(),
                fps=fps,
                workflows=workflows,
                aws=aws,
            )
            bad_id = payload.clip_id
    return ids, bad_id


async def _progress(
    console: Any,
    settings: Any,
    good: list[str],
    bad: list[str],
    catalog: WorkflowCatalog,
    options: DemoOptions,
) -> Snapshot:
    """Progress bars per stage until every clip has an outcome or the timeout passes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lava.status import snapshot
    from shared.aws import AwsClients

    clip_ids = good + bad
    tasks_total = len(good) * len(options.workflows)  # a bad clip never gets tasks
    two_level = all(len(catalog.workflows[w].levels) >= 2 for w in options.workflows)
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )
    deadline = time.monotonic() + options.timeout
    async with AwsClients(settings) as aws:
        with Progress(*columns, console=console) as progress:
            ingested = progress.add_task("ingested", total=tasks_total, note="")
            level1 = progress.add_task("level 1", total=tasks_total, note="")
            level2 = progress.add_task(
                "level 2" if two_level else "last level", total=tasks_total, note=""
            )
            post = progress.add_task("post-processed", total=len(clip_ids), note="")
            while True:
                snap = await snapshot(aws, settings)
                tasks = [t for t in snap.tasks.values() if t.clip_id in good]
                past = (TaskStatus.FINALIZING, TaskStatus.FINALIZED, TaskStatus.COMPLETED)
                progress.update(ingested, completed=len(tasks))
                progress.update(
                    level1,
                    completed=sum(1 for t in tasks if t.level >= 2 or t.status in past),
                    note=f"expirations {snap.expirations}, re-keys {snap.rekeys}",
                )
                progress.update(
                    level2,
                    completed=sum(1 for t in tasks if t.status in past),
                    note=f"same-key re-sends {snap.resends}",
                )
                outcomes = [snap.clip_status(c) for c in clip_ids]
                done = sum(1 for o in outcomes if o in (ClipStatus.COMPLETED, ClipStatus.FAILED))
                progress.update(
                    post, completed=done, note=f"failed {outcomes.count(ClipStatus.FAILED)}"
                )
                if done == len(clip_ids) or time.monotonic() > deadline:
                    return snap
                await asyncio.sleep(0.5)


@dataclass
class _Results:
    """What the demo keeps of its completed clips (the emulated S3 goes away with it)."""

    entries: list[Any] = field(default_factory=list)  # their dataset index entries
    summaries: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # as stored, by results path


async def _collect(settings: Any, ids: list[str]) -> _Results:
    from services.postproc.summary import ClipSummary
    from shared.aws import AwsClients
    from shared.dataset.index import DatasetIndex
    from shared.layout import labels_key, summary_key
    from shared.storage import ObjectMissing, S3Store
    from shared.taxonomy.records import ClipLabels

    results = _Results()
    async with AwsClients(settings) as aws:
        store, bucket = S3Store(aws), settings.names.bucket
        index = DatasetIndex(aws, settings)
        for clip_id in ids:
            entry = await index.get(clip_id)
            if entry is None:
                continue
            results.entries.append(entry)
            for key, folder in ((labels_key(clip_id), "labels"), (summary_key(clip_id), "summary")):
                try:
                    data = await store.get_bytes(bucket, key)
                except ObjectMissing:
                    continue
                results.files[f"{folder}/{clip_id}.json"] = data
                if folder == "labels":
                    results.labels.append(ClipLabels.model_validate_json(data))
                else:
                    results.summaries.append(ClipSummary.model_validate_json(data))
    return results


def _write_results(out: Path, results: _Results, bucket: str) -> None:
    from lava.dataset.report import write_report
    from shared.dataset.exports import to_bdd100k, to_coco, write_mot

    for name, data in results.files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    write_report(results.entries, results.summaries, out / "report")
    exports = out / "exports"
    (exports / "bdd100k").mkdir(parents=True, exist_ok=True)
    labels = results.labels
    (exports / "bdd100k" / "labels.json").write_text(json.dumps(to_bdd100k(labels, bucket)))
    (exports / "coco").mkdir(parents=True, exist_ok=True)
    (exports / "coco" / "annotations.json").write_text(json.dumps(to_coco(labels)))
    write_mot(labels, exports / "mot")


def _clips_table(ids: list[str], entries: list[Any]) -> Table:
    from rich.table import Table

    table = Table(title="Clips")
    for column in (
        "clip",
        "weather",
        "time",
        "scene",
        "frames",
        "objects per class",
        "tracks",
        "adjusted (+/-/moved/attr)",
        "warnings",
    ):
        table.add_column(column)
    by_id = {e.clip_id: e for e in entries}
    for clip_id in ids:
        e = by_id.get(clip_id)
        if e is None:
            table.add_row(clip_id, "", "", "", "", "[red]not completed[/red]", "", "", "")
            continue
        a = e.adjustment
        table.add_row(
            clip_id,
            e.weather,
            e.time_of_day,
            e.scene,
            str(e.frames),
            " ".join(f"{k}={v}" for k, v in e.objects_per_class.items()),
            str(sum(e.tracks_per_class.values())),
            f"+{a.get('added', 0)} -{a.get('removed', 0)} ~{a.get('moved', 0)} "
            f"a{a.get('attributes_changed', 0)}",
            str(e.warnings),
        )
    return table


async def _report(console: Any, settings: Any, ids: list[str], snap: Snapshot, out: Path) -> None:
    """Copy the results into ``out``, then print the clips, the failures and where it all is."""
    results = await _collect(settings, ids)
    await asyncio.to_thread(_write_results, out, results, settings.names.bucket)
    console.print(_clips_table(ids, results.entries))
    failures = snap.failures()
    if failures:
        console.print("[bold]failures[/bold]")
        for what, reason in failures:
            console.print(f"  {what}: {reason}")
    console.print(
        f"results: {out}/labels, {out}/summary, {out}/report/report.md, "
        f"{out}/exports (bdd100k, coco, mot), {out}/logs"
    )
