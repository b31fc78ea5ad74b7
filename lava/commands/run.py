"""`lava run`: the whole local pipeline as one long-running foreground command.

A moto server (or an AWS endpoint that is already up, e.g. LocalStack), the four services, the
Ground Truth emulator and the control service (API + dashboard) run as processes until Ctrl-C,
with a live status view. A capture rig (`lava upload`, `lava.rig.upload_clip`) or any AMQP
client feeds it from elsewhere; `lava status` and the control API watch it. The settings
another shell needs (the run's scaled durations and the control service's URL and tokens
included) are written to an env file to source.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lava.commands import backend_option, workforce_options

if TYPE_CHECKING:
    from lava.local_pipeline import LocalPipeline
    from lava.run_control import ControlAccess
    from shared.settings import Settings

# A service that keeps dying is left down after this many restarts (its log says why).
MAX_RESTARTS = 5


@click.command()
@click.option(
    "--aws-endpoint",
    default=None,
    metavar="URL|localstack",
    help="Use this AWS endpoint instead of starting a moto server; `localstack` finds a "
    "running LocalStack (localstack-client: LOCALSTACK_HOST, default localhost:4566).",
)
@click.option("--namespace", default=None, help="Default: LAVA_NAMESPACE (lava).")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the settings other shells source (default: LAVA_STATE_DIR/run.env).",
)
@click.option(
    "--logs",
    "log_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Process logs (default: LAVA_STATE_DIR/run-logs).",
)
@click.option(
    "--time-scale",
    type=float,
    default=2e-5,
    show_default=True,
    help="Scales Ground Truth's and the dispatcher's day-long durations.",
)
@workforce_options(worker_rate=5.0, expire_share=0.0)
@click.option(
    "--refresh",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between two status views.",
)
@click.option(
    "--control/--no-control",
    default=True,
    show_default=True,
    help="Run the control service (API + dashboard) too; its URL and tokens are printed "
    "once and written to the env file.",
)
@click.option(
    "--control-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the control service (0: any free one, bound before it starts and printed).",
)
@backend_option
def run(
    aws_endpoint: str | None,
    namespace: str | None,
    env_file: Path | None,
    log_dir: Path | None,
    time_scale: float,
    worker_rate: float,
    expire_share: float,
    refresh: float,
    control: bool,
    control_port: int,
    backend: str,
) -> None:
    """Run the local pipeline until Ctrl-C, with a live status view.

    \b
    In another shell:
      source .lava/run.env      # (or the --env-file): endpoints, scaled settings, tokens
      lava status               # the pipeline's state, with this run's durations
      lava upload CLIP ...      # a clip, as the capture rig sends it
      curl -H "Authorization: Bearer $LAVA_CONTROL_TOKEN" $LAVA_CONTROL_URL/v1/status
    The dashboard is $LAVA_CONTROL_URL/dashboard (sign in with a token).
    """
    from lava.endpoints import EndpointError, resolve
    from lava.local_pipeline import PipelineConfig
    from lava.run_control import control_access
    from shared.logging import configure_logging
    from shared.settings import load_settings

    base = load_settings(log__level="WARNING")
    configure_logging(base, "run")
    try:
        endpoint = resolve(aws_endpoint) if aws_endpoint else None
    except EndpointError as exc:
        raise click.ClickException(str(exc)) from None
    if backend == "labelstudio":
        from shared.labeling.labelstudio.server import installed

        if not installed():
            raise click.ClickException(
                "Label Studio is not installed; install it once (its own venv): "
                "bash scripts/labelstudio.sh"
            )
    env_path = env_file or base.state_dir / "run.env"
    access = control_access(os.environ, env_path) if control else None
    config = PipelineConfig(
        namespace=namespace or base.namespace,
        run_dir=log_dir or base.state_dir / "run-logs",
        time_scale=time_scale,
        worker_rate=worker_rate,
        expire_share=expire_share,
        aws_endpoint=endpoint,
        backend="labelstudio" if backend == "labelstudio" else "emulator",
        control=access is not None,
        control_port=control_port,
        extra_env={"LAVA_CONTROL__TOKENS": access.entries} if access else {},
    )
    sys.exit(asyncio.run(_run(config, env_path, refresh, access)))


def env_lines(
    settings: Settings,
    endpoint: str,
    ports: dict[str, int] | None = None,
    run_env: dict[str, str] | None = None,
) -> list[str]:
    """What another shell needs to talk to this pipeline, as `export` lines: the run's own
    settings (``run_env``: its scaled durations, the control service's URL and tokens), the
    endpoints, and where each process serves /metrics (LAVA_RUN_METRICS="service=url ...")."""
    values = {
        **(run_env or {}),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": settings.aws.region,
        "LAVA_NAMESPACE": settings.namespace,
        # the file is for this machine's other shells (written 0600): the real URL
        "LAVA_BROKER__AMQP_URL": settings.broker.amqp_url.get_secret_value(),
    }
    if ports:
        values["LAVA_RUN_METRICS"] = " ".join(
            f"{service}=http://127.0.0.1:{port}/metrics" for service, port in ports.items()
        )
    # The stand-ins take any credentials; real ones in this shell are left alone.
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        values |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return [f"export {k}={shlex.quote(str(v))}" for k, v in values.items()]


def write_env_file(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    header = f"# written by `lava run` (pid {os.getpid()}); removed when it stops\n"
    partial.touch(mode=0o600)  # it carries the broker URL with its password
    partial.chmod(0o600)
    partial.write_text(header + "\n".join(lines) + "\n")
    partial.replace(path)  # atomic: a reader never sees half a file


async def _run(config: Any, env_file: Path, refresh: float, access: ControlAccess | None) -> int:
    from rich.console import Console

    from devstack.local_stack import RABBITMQ_START_HINT
    from lava.commands.stack import broker_problem
    from lava.local_pipeline import LocalPipeline
    from shared.settings import load_settings, redact_url

    console = Console()
    problem = await broker_problem(load_settings())
    if problem:
        console.print(f"[red]RabbitMQ is not reachable ({problem}).[/red] {RABBITMQ_START_HINT}")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pipeline = LocalPipeline(config)
    try:
        with console.status("starting AWS stand-in, provisioning, registering jobs, services"):
            settings = await pipeline.start()
        ports = {s: p.port for s, p in pipeline.processes.items() if s != "control"}
        run_env = config.shell_env()
        if access is not None:
            run_env |= access.env(control_url(pipeline))
        write_env_file(env_file, env_lines(settings, pipeline.aws_endpoint, ports, run_env))
        console.print(
            f"[bold]lava run[/bold]: namespace {settings.namespace}, AWS {pipeline.aws_endpoint}, "
            f"RabbitMQ {redact_url(settings.broker.amqp_url.get_secret_value()).split('@')[-1]}; "
            f"logs in {config.run_dir}/\n"
            f"In another shell: [bold]source {env_file}[/bold], then `lava upload ...`, "
            "`lava status`. Ctrl-C stops everything."
        )
        if access is not None:
            console.print(control_banner(control_url(pipeline), access, env_file))
        if pipeline.labelstudio is not None:
            console.print(f"Label Studio: {pipeline.labelstudio.url}")
        await _watch(console, pipeline, settings, stop, refresh)
        return 0
    finally:
        await asyncio.to_thread(env_file.unlink, True)  # missing_ok
        with console.status("stopping"):
            codes = await pipeline.stop()
        console.print(f"stopped (exit codes {codes})")


def control_url(pipeline: LocalPipeline) -> str:
    return f"http://127.0.0.1:{pipeline.processes['control'].port}"


def control_banner(url: str, access: ControlAccess, env_file: Path) -> str:
    """The control service's lines of the run's banner; new tokens are shown here only."""
    lines = [f"Control API and dashboard: [bold]{url}[/bold] (dashboard: {url}/dashboard)"]
    if access.created:
        lines += [
            f"  operator token: {access.operator}",
            f"  viewer token:   {access.viewer}",
            f"  (shown once; also in {env_file} as $LAVA_CONTROL_TOKEN, "
            "$LAVA_CONTROL_VIEWER_TOKEN)",
        ]
    else:
        lines.append("  tokens: those of LAVA_CONTROL__TOKENS (this shell's or the env file's)")
    return "\n".join(lines)


async def _watch(
    console: Any, pipeline: LocalPipeline, settings: Settings, stop: asyncio.Event, every: float
) -> None:
    """Keep the processes up and show the pipeline's state until ``stop`` is set."""
    from rich.live import Live

    from shared.aws import AwsClients

    restarts: dict[str, int] = {}
    last_line = ""
    async with AwsClients(settings) as aws:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while not stop.is_set():
                for service, code in pipeline.exited().items():
                    if restarts.get(service, 0) < MAX_RESTARTS:
                        restarts[service] = restarts.get(service, 0) + 1
                        console.print(f"{service} exited with {code}; restarting it")
                        pipeline.spawn(service)
                view, line = await _view(aws, pipeline, settings, restarts)
                if console.is_terminal:
                    live.update(view, refresh=True)
                elif line != last_line:  # a log, not a screen: print what changed
                    console.print(line, soft_wrap=True)
                    last_line = line
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=every)
            # the last word is the state at the stop, not the state of the last refresh (a clip
            # that completed since then would otherwise never show as completed)
            view, line = await _view(aws, pipeline, settings, restarts)
            if console.is_terminal:
                live.update(view, refresh=True)
            elif line != last_line:
                console.print(line, soft_wrap=True)


async def _view(
    aws: Any, pipeline: LocalPipeline, settings: Settings, restarts: dict[str, int]
) -> tuple[Any, str]:
    from rich.table import Table

    from lava.status import snapshot

    try:
        snap = await snapshot(aws, settings)
    except Exception as exc:  # the view must survive a slow or restarting stand-in
        snap, error = None, f"status unavailable: {exc}"
    else:
        error = ""
    table = Table(title=f"lava run - {settings.namespace} - {time.strftime('%H:%M:%S')}")
    table.add_column("process")
    table.add_column("state")
    table.add_column("restarts", justify="right")
    states = []
    for service, process in pipeline.processes.items():
        code = process.popen.poll()
        state = "running" if code is None else f"exited ({code})"
        states.append(f"{service}={state}")
        table.add_row(service, state, str(restarts.get(service, 0)))
    if snap is None:
        summary = error
    else:
        clip_states: dict[str, int] = {}
        for clip in snap.clips.values():
            key = clip.status.value
            clip_states[key] = clip_states.get(key, 0) + 1
        tasks: dict[str, int] = {}
        for task in snap.tasks.values():
            tasks[task.status] = tasks.get(task.status, 0) + 1
        summary = (
            "clips: "
            + (", ".join(f"{k} {v}" for k, v in sorted(clip_states.items())) or "-")
            + " | tasks: "
            + (", ".join(f"{k} {v}" for k, v in sorted(tasks.items())) or "-")
            + f" | waiting objects {snap.waiting}, expirations {snap.expirations}, "
            f"re-keys {snap.rekeys}, failures {len(snap.failures())}"
        )
    table.caption = summary
    return table, f"{' '.join(states)} | {summary}"
