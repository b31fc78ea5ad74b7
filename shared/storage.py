"""S3 as the services use it: small objects, JSON, streamed downloads, multipart uploads."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from shared.aws import error_code

if TYPE_CHECKING:
    from shared.aws import AwsClients

# S3 multipart: parts of at least 5 MiB (all but the last), at most 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    last_modified: datetime
    etag: str
    metadata: dict[str, str]


class SharedBody(io.BytesIO):
    """An upload body reading ``bytes`` in place: never copied, whoever else holds them.

    botocore turns a bytes body into a BytesIO sharing them; over plain HTTP (moto, LocalStack,
    MinIO: no aws-chunked stream) aiohttp sizes a BytesIO with ``getbuffer()``, and CPython
    makes a shared buffer writable by copying it - each upload in flight held its body twice
    (ingest's JPEGs: docs/ingestperf.md). A read-only view answers the size without the copy.
    """

    def getbuffer(self) -> memoryview:
        return memoryview(self.getvalue())  # the shared bytes object itself


class ObjectMissing(LookupError):
    """The S3 object (or its bucket) does not exist."""


class TooLarge(ValueError):
    """An object turned out larger than the caller's cap while it was being read."""


class Changed(ValueError):
    """The object no longer has the ETag the caller checked (S3 answered 412)."""


class ObjectStore(Protocol):
    """The object-storage port the handlers (ingest, post-processing) are written against.

    :class:`S3Store` is the one implementation; tests reach S3 through it on the moto server
    or in-process (``devstack.testing.memory_aws``), so the port is S3's semantics, not a fake's.
    """

    async def head(self, bucket: str, key: str) -> ObjectInfo | None: ...
    async def get_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes: ...
    async def get_json(self, bucket: str, key: str) -> Any: ...
    async def put_bytes(
        self,
        bucket: str,
        key: str,
        body: bytes | bytearray,
        content_type: str = ...,
        metadata: dict[str, str] | None = None,
    ) -> None: ...
    async def put_json(self, bucket: str, key: str, value: Any) -> None: ...
    async def download(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        max_bytes: int | None = None,
        etag: str | None = None,
        check: Callable[[ObjectInfo], None] | None = None,
    ) -> ObjectInfo: ...


def _missing(exc: ClientError) -> bool:
    return error_code(exc) in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class S3Store:
    def __init__(self, aws: AwsClients) -> None:
        self._aws = aws

    async def head(self, bucket: str, key: str) -> ObjectInfo | None:
        s3 = await self._aws.s3()
        try:
            found = await s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return ObjectInfo(
            size=int(found.get("ContentLength", 0)),
            last_modified=found["LastModified"],
            etag=str(found.get("ETag", "")).strip('"'),
            metadata=dict(found.get("Metadata", {})),
        )

    async def _get_object(self, bucket: str, key: str, **extra: Any) -> Any:
        s3 = await self._aws.s3()
        try:
            return await s3.get_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissing(f"s3://{bucket}/{key} does not exist") from None
            if error_code(exc) in {"PreconditionFailed", "412"}:
                raise Changed(f"s3://{bucket}/{key} changed since it was checked") from None
            raise

    async def get_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, :class:`TooLarge` once more than that has
        streamed in (checked while reading, so a huge object is never held whole)."""
        response = await self._get_object(bucket, key)
        async with response["Body"] as body:
            if max_bytes is None:
                data: bytes = await body.read()
                return data
            declared = int(response.get("ContentLength") or 0)
            if declared > max_bytes:
                raise TooLarge(f"s3://{bucket}/{key} is {declared} bytes (limit {max_bytes})")
            chunks: list[bytes] = []
            size = 0
            while chunk := await body.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"s3://{bucket}/{key} is over the {max_bytes}-byte limit")
                chunks.append(chunk)
            return b"".join(chunks)

    async def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(await self.get_bytes(bucket, key))

    async def content_sha256(self, bucket: str, key: str) -> str:
        """The object's content hash (hex), read a chunk at a time."""
        response = await self._get_object(bucket, key)
        digest = hashlib.sha256()
        async with response["Body"] as body:
            while chunk := await body.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    async def put_bytes(
        self,
        bucket: str,
        key: str,
        body: bytes | bytearray,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        s3 = await self._aws.s3()
        await s3.put_object(
            Bucket=bucket,
            Key=key,
            # botocore sends a bytearray as it is (the stub says bytes); bytes go in a
            # SharedBody, read in place
            Body=SharedBody(body) if isinstance(body, bytes) else body,  # type: ignore[arg-type]
            ContentType=content_type,
            Metadata=metadata or {},
        )

    async def put_json(self, bucket: str, key: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        await self.put_bytes(bucket, key, text.encode(), "application/json")

    async def download(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        max_bytes: int | None = None,
        etag: str | None = None,
        check: Callable[[ObjectInfo], None] | None = None,
    ) -> ObjectInfo:
        """Stream an object to a local file without holding it in memory; what was written
        (``size``: the bytes streamed; date and ETag from the same response).

        ``check``: sees the object's declared size, date and ETag before a byte of its body is
        read, and refuses the object by raising (the body is closed unread). One GetObject
        then does what a HEAD and a GET did, and the object checked is the one downloaded.
        ``etag``: only that version of the object (``IfMatch``), else :class:`Changed`.
        ``max_bytes``: counted while streaming - a declared size can be wrong - and
        :class:`TooLarge` as soon as it is passed (the partial file is left for the caller's
        temporary directory to remove).
        """
        extra = {"IfMatch": f'"{etag}"'} if etag else {}
        response = await self._get_object(bucket, key, **extra)
        info = ObjectInfo(
            size=int(response.get("ContentLength", 0)),
            last_modified=response["LastModified"],
            etag=str(response.get("ETag", "")).strip('"'),
            metadata=dict(response.get("Metadata", {})),
        )
        size = 0
        async with response["Body"] as body:
            if check is not None:
                check(info)
            with path.open("wb") as out:
                while chunk := await body.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
                    out.write(chunk)
        return replace(info, size=size)

    async def upload_file(
        self,
        path: Path,
        bucket: str,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        multipart_threshold: int = 16 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        concurrency: int = 4,
    ) -> None:
        """Upload a file; multipart (parts in parallel) above the threshold."""
        size = (await asyncio.to_thread(path.stat)).st_size
        if size < multipart_threshold:
            body = await asyncio.to_thread(path.read_bytes)
            await self.put_bytes(bucket, key, body, content_type, metadata)
            return
        part_size = max(part_size, MIN_PART_SIZE, -(-size // 10_000))
        s3 = await self._aws.s3()
        created = await s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata or {}
        )
        upload_id = created["UploadId"]
        gate = asyncio.Semaphore(concurrency)

        async def send(number: int, offset: int) -> dict[str, Any]:
            async with gate:
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read(part_size)
                part = await s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                return {"PartNumber": number, "ETag": part["ETag"]}

        try:
            parts = await asyncio.gather(
                *(send(i + 1, off) for i, off in enumerate(range(0, size, part_size)))
            )
            await s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": list(parts)},  # type: ignore[arg-type]
            )
        except BaseException:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
