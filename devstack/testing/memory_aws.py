"""AWS in this process: the moto app the project's server runs, called without a socket.

For fast policy tests. :func:`memory_aws` returns ordinary :class:`shared.aws.AwsClients` whose
requests botocore serialises and signs as usual and then, instead of sending them over HTTP,
hands to moto's own WSGI application in-process (an aiobotocore ``before-send`` hook). So the
code under test is unchanged down to the wire format, and the service semantics - conditional
writes, sparse indexes, SQS visibility and redrive, SNS -> SQS delivery - are moto's, the same
as on :class:`devstack.moto_server.MotoServer`. Requests are handled one at a time on the event
loop's thread, which gives DynamoDB the atomicity ``devstack.moto_server`` gets from its lock.

moto keeps its state per process (by account and region); tests stay apart by namespace, as
they do on the shared server.

Long polls cannot block: a ``ReceiveMessage`` asks for ``WaitTimeSeconds=0`` here (in-process
moto would sleep the event loop for the whole wait), which a test sees as a poll that found
nothing, exactly what a long poll ending empty looks like.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from aiobotocore.awsrequest import AioAWSResponse
from aiobotocore.session import AioSession, get_session
from botocore.awsrequest import HeadersDict

from shared.aws import AwsClients

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest

    from shared.settings import ServiceSettings

# Any address works: nothing listens there, the hook answers first. It only has to be set so
# that settings treat AWS as an emulator (test credentials, the emulator's account).
ENDPOINT = "http://aws.in-process.test"


class _Body:
    """What aiobotocore reads a response from: ``read()`` and, for streams, ``content``."""

    def __init__(self, data: bytes, url: str) -> None:
        self._data = data
        self._offset = 0
        self.url = url
        self.content = self  # aiohttp's ClientResponse.content, which streaming bodies read

    async def read(self, amount: int = -1) -> bytes:
        end = len(self._data) if amount is None or amount < 0 else self._offset + amount
        chunk = self._data[self._offset : end]
        self._offset += len(chunk)
        return chunk

    def at_eof(self) -> bool:
        return self._offset >= len(self._data)

    def close(self) -> None:
        self._offset = len(self._data)


@cache
def _moto_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from devstack import local_sns_key, moto_instances, moto_sns_signing, moto_transactions
    from devstack.moto_indexes import install

    install()  # key-ordered Queries, as devstack.moto_server serves them
    moto_instances.install()  # no copy of a table kept per transaction, as there
    moto_transactions.install()  # item-level rollback, as there
    moto_sns_signing.install(local_sns_key.ensure())  # signed notifications, as it signs them
    return Client(DomainDispatcherApplication(create_backend_app))


async def _body(request: AWSPreparedRequest) -> bytes:
    body: Any = request.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    # a streamed upload (S3 puts with a trailing checksum): what would go over the socket
    data = body.read()
    if inspect.isawaitable(data):
        data = await data
    return bytes(data)


def _no_long_poll(request: AWSPreparedRequest, raw: bytes) -> bytes:
    target = request.headers.get("X-Amz-Target", b"")
    if isinstance(target, bytes):
        target = target.decode()
    if target.endswith("ReceiveMessage"):  # botocore speaks SQS's JSON protocol
        params = json.loads(raw or b"{}")
        params["WaitTimeSeconds"] = 0
        return json.dumps(params).encode()
    return raw


async def _answer(request: AWSPreparedRequest, **_: Any) -> AioAWSResponse:
    body = _no_long_poll(request, await _body(request))
    headers = {
        k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()
    }
    headers["Content-Length"] = str(len(body))
    response = _moto_app().open(request.url, method=request.method, headers=headers, data=body)
    data = response.get_data()
    # botocore reads response headers case-insensitively (its HeadersDict), as from a socket
    answered: Any = HeadersDict(dict(response.headers))
    return AioAWSResponse(request.url, response.status_code, answered, _Body(data, request.url))


def in_process_session() -> AioSession:
    """An aiobotocore session whose every request is answered by moto in this process."""
    session = get_session()
    session.register("before-send", _answer)
    return session


def memory_aws(settings: ServiceSettings) -> AwsClients:
    """AWS clients for ``settings`` answered in-process (the settings' endpoint is replaced)."""
    local = settings.replace(aws__endpoint_url=ENDPOINT)
    return AwsClients(local, session=in_process_session())
