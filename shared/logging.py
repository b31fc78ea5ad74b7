"""structlog set-up: JSON lines in production, readable output on a terminal.

Context (service, event id, task id) is bound with contextvars, so every line a handler logs
carries it without passing loggers around; with tracing on, every line inside a span also carries
its ``trace_id`` and ``span_id`` (shared.tracing).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared import tracing
from shared.settings import ServiceSettings

# scheme://user:password@host: the password never reaches a log line (an exception's text can
# carry a connection URL).
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s]+@", re.IGNORECASE)


def _redact(value: Any) -> Any:
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


def redact_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask URL passwords in every string field."""
    for key, value in event.items():
        event[key] = _redact(value)
    return event


def configure_logging(settings: ServiceSettings, service: str) -> None:
    fmt = settings.log.format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    level = logging.getLevelNamesMapping().get(settings.log.level.upper(), logging.INFO)
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        tracing.add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if fmt == "json" else _passthrough,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Library loggers (aio-pika reconnects, botocore retries) go through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_secrets,
                renderer,
            ],
            foreign_pre_chain=shared_processors,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO))
    for noisy in ("aiormq", "aio_pika", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _passthrough(logger: Any, method: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
