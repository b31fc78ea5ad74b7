"""Label Studio webhooks into the listener: the fast path of completion.

Label Studio posts each webhook once, synchronously, and forgets it if we are down; the
reconciliation loop is the guarantee. A webhook is a trust boundary, so:
- it must carry the shared secret in ``X-Lava-Webhook-Secret`` (compared in constant time);
  without it - or when no secret is configured - it is refused with 401;
- its body is bounded and used only to name a task and project: the labels are re-read from
  Label Studio's API, never taken from the body;
- a project that belongs to no Label Studio job of this namespace is refused (404).
The event it produces is the reconciliation's, with the same derived id.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from services.listener.labelstudio import LabelStudioSide
from shared.labeling.labelstudio.backend import WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER
from shared.listening import port_of, server_socket

log = structlog.get_logger(__name__)

PATH = "/webhooks/labelstudio"
MAX_BODY = 1024 * 1024  # a Label Studio annotation payload for a 10 s clip is well below


@dataclass
class WebhookCounters:
    accepted: int = 0
    refused: int = 0
    ignored: int = 0
    failed: int = 0


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def task_and_project(body: Any) -> tuple[int, int] | None:
    """The (task id, project id) a webhook names, or None."""
    if not isinstance(body, dict):
        return None
    task = body.get("task")
    annotation = body.get("annotation")
    project = body.get("project")
    task_id = _int(task.get("id")) if isinstance(task, dict) else None
    if task_id is None and isinstance(annotation, dict):
        task_id = _int(annotation.get("task"))
    project_id = _int(project.get("id")) if isinstance(project, dict) else None
    if project_id is None and isinstance(task, dict):
        project_id = _int(task.get("project"))
    if task_id is None or project_id is None:
        return None
    return task_id, project_id


class WebhookReceiver:
    def __init__(self, side: LabelStudioSide, secret: str) -> None:
        self.side = side
        self._secret = secret.encode()
        self.counters = WebhookCounters()

    def authentic(self, request: web.Request) -> bool:
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "").encode()
        return bool(self._secret) and hmac.compare_digest(given, self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authentic(request):
            self.counters.refused += 1
            log.warning("webhook refused: missing or wrong secret", peer=request.remote)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            body = await request.json()
        except (ValueError, web.HTTPRequestEntityTooLarge):
            self.counters.refused += 1
            return web.json_response({"error": "body is not JSON or too large"}, status=400)
        action = body.get("action") if isinstance(body, dict) else None
        if action not in WEBHOOK_ACTIONS:
            self.counters.ignored += 1
            return web.json_response({"ignored": str(action)[:64]})
        named = task_and_project(body)
        if named is None:
            self.counters.refused += 1
            return web.json_response({"error": "no task or project id"}, status=400)
        task_id, project = named
        job = self.side.job_for_project(project)
        if job is None:
            await self.side.refresh()
            job = self.side.job_for_project(project)
        if job is None:
            self.counters.refused += 1
            return web.json_response({"error": "unknown project"}, status=404)
        try:
            task = await self.side.client.get_task(task_id)
            if _int(task.get("project")) not in (None, project):
                self.counters.refused += 1
                return web.json_response({"error": "task is not in that project"}, status=404)
            published = await self.side.handle_task(job, task, via="webhook")
        except Exception:
            # Label Studio will not retry; the reconciliation picks it up.
            self.counters.failed += 1
            log.exception("webhook could not be translated; reconciliation will", task=task_id)
            return web.json_response({"error": "not translated"}, status=503)
        self.counters.accepted += 1
        log.info("webhook accepted", task=task_id, job=job.name, published=published)
        return web.json_response({"published": published})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(PATH, self.handle)
        return app


async def serve(receiver: WebhookReceiver, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve on the socket handed down for ``webhook`` (its port is in the URL the starter
    registered with Label Studio), else on ``host:port``; returns the port served."""
    sock = server_socket("webhook", host, port)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, port_of(sock)
