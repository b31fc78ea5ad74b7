"""The whole pipeline on one machine: a moto server, the machine's RabbitMQ, the Ground Truth
emulator and the four services, each a real process.

Used by `lava demo`, the end-to-end tests and the pipeline benchmark, so all three run the same
thing. Ground Truth's long durations (14-day retention, availability lifetime) and the
dispatcher's (5-day re-send and level timeout) are scaled by one factor, which keeps their
proportions - and so the policy's behaviour - while a run takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devstack.local_stack import MotoServer
from emulators.settings import LocalSettings
from lava.run_identities import OPERATOR, broker_env, forget, provision_for_run
from shared.aws import AwsClients
from shared.bus import Bus
from shared.labeling.jobs import JobManager
from shared.labeling.labelstudio.server import LabelStudioServer
from shared.labeling.streaming_job import Backend
from shared.listening import hand_over, listen, port_of
from shared.resources import provision
from shared.workflows import load_catalog

DAY = 24 * 3600
MODULES = {
    "ingest": "services.ingest",
    "dispatcher": "services.dispatcher",
    "listener": "services.listener",
    "postproc": "services.postproc",
    "gt-emulator": "emulators.groundtruth",
    "control": "services.control",  # started on demand (API + dashboard)
    "ls-annotator": "emulators.labelstudio",
}
SERVICES = ("ingest", "dispatcher", "listener", "postproc", "gt-emulator")
# With Label Studio as the backend, a simulated annotator works in it instead of the emulator.
LABELSTUDIO_SERVICES = ("ingest", "dispatcher", "listener", "postproc", "ls-annotator")
# The processes that hold the run's seal key (shared/seal.py), as the Secret's two do.
SEALERS = ("dispatcher", "listener")
# The listening socket each process is handed (shared/listening.py); the others' is "health".
SERVER_ROLE = {"control": "control"}


@dataclass
class PipelineConfig:
    namespace: str
    run_dir: Path
    time_scale: float = 2e-5  # 14 days -> 24 s, 5 days -> 8.6 s, 7 days -> 12 s
    worker_rate: float = 20.0
    latency_min: float = 0.2
    latency_max: float = 1.0
    expire_share: float = 0.0
    box_jitter: float = 0.0
    miss_share: float = 0.0
    wrong_attribute_share: float = 0.0
    adjust_fix_share: float = 0.8
    max_concurrent_tasks: int = 1000
    # The emulator's profile (realistic: outputs and job lifecycle as the AWS guide describes
    # them), its Initializing period (Ground Truth time, scaled) and its 10-day idle stop -
    # off unless asked: at a run's time scale, ten idle days pass between a clip's two levels.
    profile: str = "realistic"
    initializing_seconds: float = 300.0
    idle_stop_seconds: float = 0.0
    aws_fault_rate: float = 0.0
    duplicate_delivery: bool = False
    backend: Backend = "emulator"
    labelstudio_reconcile_seconds: float = 2.0
    extra_env: dict[str, str] = field(default_factory=dict)
    # The run's seal key (shared/seal.py): the dispatcher seals its inputs, the listener opens
    # the outputs without a lookup - as a deployment with its Secret set does.
    seal_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    # An AWS endpoint that is already running (a LocalStack, `lava stack up`); None starts a
    # moto server for the run and stops it afterwards.
    aws_endpoint: str | None = None
    # How long every process started together may take to answer /readyz (a loaded machine
    # imports slowly).
    ready_timeout_seconds: float = 60.0
    # Whether the control service (API + dashboard) runs with the others (`lava run` does;
    # tests that do not call it leave it out). Its tokens come in extra_env.
    control: bool = False
    control_port: int = 0  # 0: any free port (bound by the pipeline, then handed down)

    @property
    def drills(self) -> bool:
        """Whether the run injects faults (its processes then start through lava.drill)."""
        return self.aws_fault_rate > 0 or self.duplicate_delivery

    @property
    def services(self) -> tuple[str, ...]:
        base = LABELSTUDIO_SERVICES if self.backend == "labelstudio" else SERVICES
        return (*base, "control") if self.control else base

    def shell_env(self) -> dict[str, str]:
        """The run's settings another shell needs to see what its processes see (the scaled
        durations above all: `lava status` ages waiting objects by the re-send interval)."""
        return {
            key: value
            for key, value in self.env().items()
            # the processes' log format and faults are theirs, not a shell's
            if key != "LAVA_LOG__FORMAT" and not key.startswith("LAVA_FAULT__")
        }

    def env(self) -> dict[str, str]:
        scaled = self.time_scale
        values = {
            "LAVA_NAMESPACE": self.namespace,
            "LAVA_LOG__FORMAT": "json",
            "LAVA_EMULATOR__TIME_SCALE": repr(scaled),
            "LAVA_EMULATOR__WORKER_RATE": repr(self.worker_rate),
            "LAVA_EMULATOR__LATENCY_MIN_SECONDS": repr(self.latency_min),
            "LAVA_EMULATOR__LATENCY_MAX_SECONDS": repr(self.latency_max),
            "LAVA_EMULATOR__EXPIRE_SHARE": repr(self.expire_share),
            "LAVA_EMULATOR__BOX_JITTER": repr(self.box_jitter),
            "LAVA_EMULATOR__MISS_SHARE": repr(self.miss_share),
            "LAVA_EMULATOR__WRONG_ATTRIBUTE_SHARE": repr(self.wrong_attribute_share),
            "LAVA_EMULATOR__ADJUST_FIX_SHARE": repr(self.adjust_fix_share),
            "LAVA_EMULATOR__POLL_SECONDS": "0.1",
            "LAVA_EMULATOR__PROFILE": self.profile,
            "LAVA_EMULATOR__INITIALIZING_SECONDS": repr(self.initializing_seconds),
            "LAVA_EMULATOR__IDLE_STOP_SECONDS": repr(self.idle_stop_seconds),
            "LAVA_DISPATCH__JOB_RECHECK_SECONDS": "0.5",
            # Every job takes input: a stop (the drills') is noticed within 10 s, not 600.
            "LAVA_DISPATCH__JOB_LIST_SECONDS": "10",
            "LAVA_LABELING__MAX_CONCURRENT_TASKS": str(self.max_concurrent_tasks),
            "LAVA_DISPATCH__RESEND_INTERVAL_SECONDS": repr(5 * DAY * scaled),
            "LAVA_DISPATCH__LEVEL_TIMEOUT_SECONDS": repr(5 * DAY * scaled),
            "LAVA_DISPATCH__SWEEP_INTERVAL_SECONDS": repr(max(0.25, DAY * scaled / 4)),
            "LAVA_DISPATCH__SEND_LEASE_SECONDS": "3",
            "LAVA_DISPATCH__RETRY_BASE_SECONDS": "0.2",
            "LAVA_LISTENER__WAIT_SECONDS": "1",
            "LAVA_LISTENER__VISIBILITY_TIMEOUT_SECONDS": "5",
            # New jobs are created before the services start; a re-created one is noticed by
            # its first output (services/listener/listener.py), a brand-new one by this.
            "LAVA_LISTENER__REFRESH_SECONDS": "10",
            "LAVA_BROKER__REDELIVERY_BACKOFF_SECONDS": "0.1",
            "LAVA_BROKER__REDELIVERY_BACKOFF_MAX_SECONDS": "1",
            "LAVA_RUNTIME__SHUTDOWN_GRACE_SECONDS": "10",
            "LAVA_RUNTIME__HANDLER_LEASE_SECONDS": "30",
            "LAVA_LABELSTUDIO__TIME_SCALE": repr(scaled),
            "LAVA_LABELSTUDIO__RECONCILE_SECONDS": repr(self.labelstudio_reconcile_seconds),
        }
        if self.drills:  # read only by `python -m lava.drill` (see spawn)
            values["LAVA_FAULT__AWS_THROTTLE_RATE"] = repr(self.aws_fault_rate)
            values["LAVA_FAULT__DUPLICATE_DELIVERY"] = (
                "true" if self.duplicate_delivery else "false"
            )
        values.update(self.extra_env)
        return values


@dataclass
class Process:
    service: str
    port: int
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    starts: int = 1


class LocalPipeline:
    def __init__(self, config: PipelineConfig, base_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.run_dir = config.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self.moto: MotoServer | None = None
        self.settings: LocalSettings | None = None
        self.processes: dict[str, Process] = {}
        self.labelstudio: LabelStudioServer | None = None
        # Bound here and handed down, held across restarts (a restarted process serves on the
        # same port, so the webhook URL registered with Label Studio stays right).
        self.listening: dict[str, dict[str, socket.socket]] = {}
        self.webhook_socket: socket.socket | None = None
        self.admin: LocalSettings | None = None  # the shared user: declares, deletes
        self.identities: dict[str, str] = {}  # component -> AMQP URL (lava.run_identities)

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def aws_endpoint(self) -> str:
        if self.config.aws_endpoint:
            return self.config.aws_endpoint
        assert self.moto is not None, "start() first"
        return self.moto.endpoint

    def _settings(self) -> LocalSettings:
        env = {**self.config.env(), "AWS_ENDPOINT_URL": self.aws_endpoint}
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            # the same values the processes read (faults are enabled only in the processes)
            return LocalSettings.load()
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    async def start(self, services: tuple[str, ...] | None = None) -> LocalSettings:
        services = self.config.services if services is None else services
        if self.config.aws_endpoint is None:
            self.moto = MotoServer(port=0, log_path=self.run_dir / "moto.log")
            await asyncio.to_thread(self.moto.start)
        if self.config.backend == "labelstudio":
            await self._start_labelstudio()
        settings = self.settings = self._settings()
        async with AwsClients(settings) as aws:
            await provision(aws, settings.names)
            await JobManager(aws, settings).create_from_catalog(
                load_catalog(settings.labeling.workflows_file), backend=self.config.backend
            )
        async with Bus(settings, client_name="lava-pipeline", declare=True):
            pass  # provisions the topology; the services check it passively
        self.admin, self.identities = settings, await provision_for_run(settings, self.run_dir)
        if self.identities:  # the run's caller acts as the operator CLI
            url = self.identities[OPERATOR]
            settings = self.settings = settings.replace(broker__amqp_url=url)
        for service in services:
            self.spawn(service)
        await self.wait_ready(services, timeout=self.config.ready_timeout_seconds)
        return settings

    async def _start_labelstudio(self) -> None:
        """A Label Studio server from its own venv, and the listener's webhook address."""
        server = self.labelstudio = LabelStudioServer(self.run_dir)
        await asyncio.to_thread(server.start)
        # The listener's webhook socket is bound now: its URL goes into the jobs created next.
        self.webhook_socket = listen()
        webhook_port = port_of(self.webhook_socket)
        self.config.extra_env.update(
            {
                "LAVA_LABELSTUDIO__URL": server.url,
                "LAVA_LABELSTUDIO__TOKEN": server.token,
                "LAVA_LABELSTUDIO__WEBHOOK_PORT": str(webhook_port),
                "LAVA_LABELSTUDIO__WEBHOOK_URL": (
                    f"http://127.0.0.1:{webhook_port}/webhooks/labelstudio"
                ),
                "LAVA_LABELSTUDIO__WEBHOOK_SECRET": secrets.token_urlsafe(24),
            }
        )

    def sockets_for(self, service: str) -> dict[str, socket.socket]:
        """The listening sockets ``service`` is handed: bound at its first start, then kept."""
        held = self.listening.get(service)
        if held is None:
            port = self.config.control_port if service == "control" else 0
            held = self.listening[service] = {SERVER_ROLE.get(service, "health"): listen(port=port)}
            if service == "listener" and self.webhook_socket is not None:
                held["webhook"] = self.webhook_socket
        return held

    def env_for(self, service: str, port: int) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(self.config.env())
        env.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "LAVA_RUNTIME__HEALTH_PORT": str(port),
                "LAVA_RUNTIME__HEALTH_HOST": "127.0.0.1",
                # the control service serves its API, dashboard and /readyz on one port
                "LAVA_CONTROL__PORT": str(port),
                "LAVA_CONTROL__HOST": "127.0.0.1",
                "LAVA_CONTROL__PLAIN_LOCALHOST": "true",  # http on loopback: no Secure cookies
                "PYTHONUNBUFFERED": "1",
                **broker_env(service, self.identities),
            }
        )
        if service in SEALERS:
            env["LAVA_LABELING__SEAL_KEYS"] = self.config.seal_key
        return env

    def spawn(self, service: str) -> Process:
        sockets = self.sockets_for(service)
        handed = hand_over(sockets)
        port = port_of(sockets[SERVER_ROLE.get(service, "health")])
        log = (self.run_dir / f"{service}.log").open("ab")
        # A drill starts the same module through lava.drill, which enables the LAVA_FAULT__*
        # faults first; the services' own entry points never read them.
        entry = (
            ["-m", "lava.drill", MODULES[service]]
            if self.config.drills
            else ["-m", MODULES[service]]
        )
        popen = subprocess.Popen(
            [sys.executable, *entry],
            env={**self.env_for(service, port), **handed.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=handed.fds,
        )
        previous = self.processes.get(service)
        process = Process(
            service, port, popen, log, starts=(previous.starts + 1) if previous else 1
        )
        self.processes[service] = process
        return process

    def ready(self, service: str) -> bool:
        process = self.processes[service]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/readyz", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    async def wait_ready(
        self, services: tuple[str, ...] | None = None, timeout: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.config.services if services is None else services)
        while pending:
            for service in pending:
                process = self.processes[service]
                if process.popen.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited with {process.popen.returncode}; see "
                        f"{self.run_dir / (service + '.log')}"
                    )
            # All at once: a process still importing does not refuse the connection (the
            # pipeline holds its socket), so each probe of it waits out its timeout.
            answers = await asyncio.gather(*(asyncio.to_thread(self.ready, s) for s in pending))
            pending = [s for s, ready in zip(pending, answers, strict=True) if not ready]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout}s: {', '.join(pending)}")
            if pending:
                await asyncio.sleep(0.2)

    def kill(self, service: str) -> None:
        """SIGKILL: no draining, no clean-up - a crash."""
        process = self.processes[service]
        with contextlib.suppress(ProcessLookupError):
            process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(timeout=10)

    async def restart(self, service: str) -> None:
        self.spawn(service)
        await self.wait_ready((service,))

    def exited(self) -> dict[str, int]:
        """Processes that have ended, with their exit codes."""
        return {
            service: code
            for service, process in self.processes.items()
            if (code := process.popen.poll()) is not None
        }

    async def stop(self) -> dict[str, int]:
        """SIGTERM every process (they drain), then stop moto; exit codes by service."""
        codes: dict[str, int] = {}
        for process in self.processes.values():
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for service, process in self.processes.items():
            try:
                codes[service] = await asyncio.to_thread(process.popen.wait, 30)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                codes[service] = await asyncio.to_thread(process.popen.wait, 10)
            process.log.close()
        # With a run's own moto server, AWS state ends here, so the broker's goes too; an
        # external endpoint keeps its state, so its queues (and what waits in them) stay.
        if self.admin is not None and self.config.aws_endpoint is None:
            with contextlib.suppress(Exception):
                async with Bus(self.admin, client_name="lava-pipeline") as bus:
                    await bus.delete_topology()
            if self.identities:
                await forget(self.admin, self.run_dir)
        if self.moto is not None:
            await asyncio.to_thread(self.moto.stop)
        if self.labelstudio is not None:
            await asyncio.to_thread(self.labelstudio.stop)
        self.close_sockets()
        return codes

    def close_sockets(self) -> None:
        for held in self.listening.values():
            for sock in held.values():
                sock.close()
        self.listening.clear()
        if self.webhook_socket is not None:
            self.webhook_socket.close()
            self.webhook_socket = None

    async def __aenter__(self) -> LocalPipeline:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def metric(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """One Prometheus sample from a process's /metrics (0 when absent)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
            continue
        if head.split("{")[0] != name:
            continue
        total += float(value)
    return total
