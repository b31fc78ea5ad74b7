"""Ingest's trust boundary on the clip itself: what PyAV may open, what S3 may send."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from devstack.testing.events import clip_ingested
from services.ingest.extract import ClipError, FrameExtractor
from services.ingest.handler import IngestHandler
from shared.aws import AwsClients
from shared.settings import Settings
from shared.storage import Changed, ObjectInfo, S3Store, TooLarge
from tests.support.clips import small_clip
from tests.support.requests import counting


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(tmp_path_factory.mktemp("trust"), seconds=1, gop=10).video


def _hls(path: Path, segment: str) -> Path:
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n{segment}\n#EXT-X-ENDLIST\n")
    return path


def _concat(path: Path, target: Path) -> Path:
    path.write_text(f"ffconcat version 1.0\nfile {target}\n")
    return path


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_a_playlist_naming_another_file_is_refused_before_it_is_read(
    clip: Path, tmp_path: Path, kind: str
) -> None:
    # A playlist naming a local file: FFmpeg alone would follow it (the danger: any file the
    # pod can read - a token, a config - would come out as frames).
    playlist = (
        _hls(tmp_path / "clip.m3u8", str(clip))
        if kind == "hls"
        else _concat(tmp_path / "clip.mp4", clip)
    )
    with av.open(str(playlist), options={"safe": "0"}) as unguarded:
        assert unguarded.format.name == kind  # the control: unguarded, it opens
    with pytest.raises(ClipError) as refused:
        FrameExtractor(playlist)
    reason = str(refused.value)
    assert "not a video in an accepted container format" in reason
    assert "playlists" in reason and "\n" not in reason


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        thread.join()


def test_a_playlist_pointing_at_a_url_makes_no_request(
    tmp_path: Path, web_server: tuple[str, list[str]]
) -> None:
    url, hits = web_server
    playlist = _hls(tmp_path / "clip.m3u8", f"{url}/segment.ts")
    with pytest.raises(ClipError, match="accepted container format"):
        FrameExtractor(playlist)
    assert hits == []


def test_accepted_containers_still_open(clip: Path, tmp_path: Path) -> None:
    with FrameExtractor(clip) as extractor:
        assert extractor.info.container.startswith("mov,mp4")
    with pytest.raises(ClipError, match=r"accepted: matroska"):
        FrameExtractor(clip, containers={"matroska"})


# --- the download: the object that was checked, never more than the cap --------------------
@pytest.mark.integration
async def test_download_checks_the_response_and_caps_bytes_while_streaming(
    settings: Settings, aws: AwsClients, tmp_path: Path
) -> None:
    store, bucket = S3Store(aws), settings.names.bucket
    await store.put_bytes(bucket, "raw/x.mp4", b"a" * 3000)
    seen: list[ObjectInfo] = []
    got = await store.download(bucket, "raw/x.mp4", tmp_path / "1", check=seen.append)
    assert got.size == 3000 and [i.size for i in seen] == [3000] and got.etag == seen[0].etag

    def refuse(info: ObjectInfo) -> None:
        raise ValueError(f"{info.size} bytes refused")

    with pytest.raises(ValueError, match="3000 bytes refused"):
        await store.download(bucket, "raw/x.mp4", tmp_path / "2", check=refuse)
    assert not (tmp_path / "2").exists()  # refused before a byte of the body was read
    await store.put_bytes(bucket, "raw/x.mp4", b"b" * 3000)  # replaced since got
    with pytest.raises(Changed):
        await store.download(bucket, "raw/x.mp4", tmp_path / "3", etag=got.etag)
    with pytest.raises(TooLarge):
        await store.download(bucket, "raw/x.mp4", tmp_path / "4", max_bytes=2999)
    assert (tmp_path / "4").stat().st_size <= 2999


class _LyingLength(S3Store):
    """S3 says the object is small (the cap must not trust it)."""

    async def _get_object(self, bucket: str, key: str, **extra: Any) -> Any:
        response = await super()._get_object(bucket, key, **extra)
        return {**response, "ContentLength": 1}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("store_type", "max_bytes", "reason"),
    [
        (S3Store, 2000, "bytes, above the limit of 2000 (LAVA_INGEST__MAX_BYTES)"),
        (_LyingLength, 2000, "grew above the limit of 2000 bytes while downloading"),
    ],
)
async def test_the_handler_fails_the_clip_with_a_clear_reason(
    settings: Settings,
    aws: AwsClients,
    clip: Path,
    store_type: type[S3Store],
    max_bytes: int,
    reason: str,
) -> None:
    limited = settings.replace(ingest__max_bytes=max_bytes)
    store = store_type(aws)
    bucket = settings.names.bucket
    await S3Store(aws).upload_file(clip, bucket, "raw/d/c.mp4")

    async def publish(event: Any) -> None:
        raise AssertionError("nothing is published by ingest()")

    handler = IngestHandler(limited, store, publish)
    with pytest.raises(ClipError) as failed:
        await handler.ingest(clip_ingested("c", video_uri=f"s3://{bucket}/raw/d/c.mp4"))
    assert reason in str(failed.value) and "\n" not in str(failed.value)


@pytest.mark.integration
async def test_the_clip_is_checked_and_downloaded_in_one_request(
    settings: Settings, aws: AwsClients, clip: Path
) -> None:
    """Size, date and ETag come from the GetObject that downloads the clip: no HeadObject."""
    bucket = settings.names.bucket
    await S3Store(aws).upload_file(clip, bucket, "raw/d/one.mp4")

    async def publish(event: Any) -> None:
        raise AssertionError("nothing is published by ingest()")

    handler = IngestHandler(settings, S3Store(aws), publish)
    async with counting(aws, "s3") as made:
        await handler.ingest(clip_ingested("one", video_uri=f"s3://{bucket}/raw/d/one.mp4"))
    assert made.operations()["HeadObject"] == 0
    assert made.of("GetObject").count("raw/d/one.mp4") == 1
