"""What the CLI says when a command fails: one line, and what to do next.

Click already reports usage errors and :class:`click.ClickException` in one line. Everything
else that escapes a command - a missing credential, an endpoint that does not answer, a broker
that is down, a table that was never provisioned - is turned into one line here instead of a
traceback. ``LAVA_DEBUG=1`` keeps the traceback for a bug report.
"""

from __future__ import annotations

import os

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

# A module this installation may leave out -> what installs it (pyproject.toml's extras; the
# local tooling is in a source checkout and the image's `local` target, not the production one).
_CONTROL = "the control extra: pip install 'lava-pipeline[control]'"
_LOCAL = "the local extra: pip install 'lava-pipeline[local]'"
OPTIONAL_MODULES = {
    "fastapi": _CONTROL,
    "starlette": _CONTROL,
    "uvicorn": _CONTROL,
    "jwt": _CONTROL,
    "matplotlib": "the report extra: pip install 'lava-pipeline[report]'",
    "moto": _LOCAL,
    "localstack_client": _LOCAL,
    "devstack": "the local tooling (devstack/): run it from a source checkout or the image's "
    "`local` target",
}

_LOCAL_ENV = (
    "for the local stack, `source .lava/run.env` (written by `lava run`) or export the "
    "`AWS_ENDPOINT_URL=...` line `lava stack up` printed"
)


def one_line(exc: BaseException) -> str:
    """The message an operator sees for ``exc`` (never more than one line)."""
    text = _explain(exc)
    return " ".join(text.split())


def _explain(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        part = OPTIONAL_MODULES.get(exc.name.split(".")[0])
        if part:
            return f"{exc.name} is not installed: this command needs {part}"
    if isinstance(exc, NoCredentialsError):
        return f"no AWS credentials found; {_LOCAL_ENV}, or configure AWS credentials"
    if isinstance(exc, NoRegionError):
        return "no AWS region configured: set AWS_DEFAULT_REGION or LAVA_AWS__REGION"
    if isinstance(exc, EndpointConnectionError):
        return (
            f"the AWS endpoint does not answer ({exc.kwargs.get('endpoint_url', '?')}); "
            "start the local stack (`lava stack up` or `lava run`) or check AWS_ENDPOINT_URL"
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return f"{message or 'a table is missing'}; provision it with `lava stack provision`"
        if code in {"NoSuchBucket", "404"}:
            return f"{message or 'the bucket is missing'}; run `lava stack provision`"
        return f"AWS refused the call ({code}: {message})"
    if _is_broker_down(exc):
        url = os.environ.get("LAVA_BROKER__AMQP_URL", "amqp://127.0.0.1:5672/")
        host = url.rsplit("@", 1)[-1]
        return (
            f"RabbitMQ does not answer at {host} ({type(exc).__name__}); start it "
            "(`rabbitmq-server -detached`) or set LAVA_BROKER__AMQP_URL"
        )
    return (
        f"{type(exc).__name__}: {exc} (unexpected; run again with LAVA_DEBUG=1 for the "
        "traceback and report it)"
    )


def _is_broker_down(exc: BaseException) -> bool:
    import aiormq.exceptions

    return isinstance(exc, aiormq.exceptions.AMQPConnectionError | ConnectionRefusedError)
