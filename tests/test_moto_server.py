"""The project's moto server serialises DynamoDB requests (atomic conditional writes)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from devstack.moto_server import AtomicDynamoDB


class _CountingApp:
    """A WSGI app that records how many requests were inside it at once."""

    def __init__(self, threads: int, patience: float) -> None:
        self.inside = 0
        self.most = 0
        self._guard = threading.Lock()
        self._all_arrived = threading.Barrier(threads, timeout=patience)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        with contextlib.suppress(threading.BrokenBarrierError):
            self._all_arrived.wait()  # everyone inside at once, unless something serialises us
        with self._guard:
            self.inside -= 1
        start_response("200 OK", [])
        return [b"{}"]


def _run(target: str, patience: float, threads: int = 4) -> int:
    # patience: how long a request inside waits for the others (the serialised case can only
    # ever see one, whatever the timing; the concurrent case returns as soon as all arrived)
    app = _CountingApp(threads, patience)
    wrapped = AtomicDynamoDB(app)
    environ = {"HTTP_X_AMZ_TARGET": target} if target else {}
    workers = [
        threading.Thread(target=lambda: list(wrapped(dict(environ), lambda *a: None)))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return app.most


def test_dynamodb_requests_run_one_at_a_time() -> None:
    assert _run("DynamoDB_20120810.PutItem", patience=0.2) == 1


def test_other_services_stay_concurrent() -> None:
    # e.g. S3, or an SQS long poll: they must not wait for DynamoDB or for each other
    assert _run("", patience=60) == 4
    assert _run("AmazonSQS.ReceiveMessage", patience=60) == 4
