"""Dataset exports, run in the background by the control replicas; none lost, none doubled.

- ``POST /v1/dataset/exports`` records the export ``queued`` (a conditional create: a
  repeated request gets the same export) and asks this replica to start it.
- Starting is a **claim**: a conditional update that takes a lease
  (``LAVA_CONTROL__EXPORT_LEASE_SECONDS``) and numbers the attempt, so one replica runs it.
  The runner renews the lease every third of it and writes its files under its attempt's own
  prefix (``exports/<id>/attempt-<n>/``); it records ``completed`` (files, counts) or
  ``failed`` (the reason) only while it still holds that attempt. Losing the lease (a renewal
  refused) stops it: the attempt that took over owns the outcome, and the stale attempt's
  files are never named by the record.
- Every replica looks every ``LAVA_CONTROL__EXPORT_POLL_SECONDS`` for claimable exports:
  queued ones nobody started (this replica was busy) and running ones whose lease ran out
  because their replica died (killed, evicted, out of memory). Those are **resumed** by a new
  attempt that starts over: the query and the files are cheap to redo, and a half-written
  attempt is harmless in its own prefix.
- After ``LAVA_CONTROL__EXPORT_MAX_ATTEMPTS`` attempts that ended that way the export ends
  ``failed`` with the reason (something about it kills its runner).
- A replica stopping (SIGTERM) cancels its runs and releases them: queued again, claimable at
  once, the attempt not counted; another replica resumes them at its next look.
- Refusals (too many clips, missing or invalid labels) fail the export at once with the
  reason. A transient AWS error that outlasted the client's retries leaves the lease to run
  out (another attempt, later); any other error fails it ("internal error", logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable

import structlog

from shared.aws import AwsClients, is_transient
from shared.dataset.export_job import ExportRefused, produce
from shared.dataset.export_store import DatasetExport, ExportStore
from shared.dataset.index import DatasetIndex
from shared.loops import every
from shared.settings import ControlSettings

log = structlog.get_logger(__name__)


def replica_name() -> str:
    """This process, unique across restarts (a restarted container keeps host name and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class ExportRunner:
    def __init__(
        self,
        aws: AwsClients,
        settings: ControlSettings,
        now: Callable[[], float],
        replica: str | None = None,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.store = ExportStore(aws, settings)
        self.index = DatasetIndex(aws, settings)
        self.now = now
        self.replica = replica or replica_name()
        self._running: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._claiming: set[str] = set()
        self._busy = 0
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # --- what the service calls ---------------------------------------------------------------
    async def run(self) -> None:
        """Look for exports to run or resume until ``stop``."""
        await every(
            self._stop, self.settings.control.export_poll_seconds, self.sweep, "export sweep failed"
        )

    def submit(self, export_id: str) -> None:
        """Start this export here now if a slot is free (else a sweep will)."""
        if self._stop.is_set():
            return
        task = asyncio.create_task(self._start(export_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def sweep(self) -> None:
        limits = self.settings
        for export in await self.store.claimable(self.now()):
            if export.export_id in self._running or export.export_id in self._claiming:
                continue
            if export.attempt >= limits.control.export_max_attempts:
                if await self.store.give_up(
                    export.export_id, self.now(), limits.control.export_max_attempts
                ):
                    log.warning("export given up", export_id=export.export_id)
                continue
            if self._busy >= limits.control.export_concurrency:
                return
            await self._start(export.export_id)

    async def stop(self) -> None:
        """Cancel this replica's runs and hand them back (queued, attempt not counted)."""
        self._stop.set()
        for task in list(self._background):
            task.cancel()
        running = dict(self._running)
        for _, task in running.values():
            task.cancel()
        for export_id, (attempt, task) in running.items():
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if await self.store.release(export_id, self.replica, attempt):
                log.info("export handed back", export_id=export_id, attempt=attempt)

    # --- one export ---------------------------------------------------------------------------
    async def _start(self, export_id: str) -> None:
        limits = self.settings
        if (
            self._busy >= limits.control.export_concurrency
            or export_id in self._claiming
            or export_id in self._running
        ):
            return
        self._busy += 1
        self._claiming.add(export_id)
        try:
            export = await self.store.claim(
                export_id,
                self.replica,
                self.now(),
                limits.control.export_lease_seconds,
                limits.control.export_max_attempts,
            )
        except BaseException:
            self._busy -= 1
            raise
        finally:
            self._claiming.discard(export_id)
        if export is None:
            self._busy -= 1
            return
        task = asyncio.create_task(self._run(export))
        self._running[export_id] = (export.attempt, task)

        def finished(_: asyncio.Task[None]) -> None:
            self._busy -= 1
            self._running.pop(export_id, None)

        task.add_done_callback(finished)

    async def _run(self, export: DatasetExport) -> None:
        ident, attempt = export.export_id, export.attempt
        bound = log.bind(export_id=ident, attempt=attempt, format=export.format.value)
        bound.info("export started", where=export.where)
        lease = self.settings.control.export_lease_seconds
        work = asyncio.create_task(
            produce(
                self.aws,
                self.index,
                self.settings.names.bucket,
                export,
                attempt,
                self.settings.control.export_max_clips,
            )
        )
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=lease / 3)
                if work.done():
                    break
                try:
                    held = await self.store.renew(ident, self.replica, attempt, self.now(), lease)
                except Exception as exc:  # the lease may still hold: try again next time
                    bound.warning("export lease not renewed", error=repr(exc))
                    continue
                if not held:
                    bound.warning("export lease lost; another attempt owns the export")
                    return
            result = work.result()
        except ExportRefused as exc:
            await self.store.fail(ident, self.replica, attempt, self.now(), str(exc))
            bound.warning("export failed", reason=str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                bound.warning("export interrupted by a transient error", error=repr(exc))
                return  # its lease runs out; a later attempt resumes it
            bound.exception("export failed")
            reason = f"internal error ({type(exc).__name__}); see the control service's log"
            await self.store.fail(ident, self.replica, attempt, self.now(), reason)
            return
        finally:
            work.cancel()
        if await self.store.complete(
            ident,
            self.replica,
            attempt,
            self.now(),
            result.files,
            result.clips,
            result.frames,
            result.annotations,
        ):
            bound.info("export completed", clips=result.clips, files=len(result.files))
        else:
            bound.warning("export attempt lost its lease before completing; its files are unused")
