"""Debian's headless chromium for the dashboard's browser tests: one process per test module,
driven by Playwright over CDP (no browser download), and screenshots kept as artifacts.

Screenshots go under the test's ``tmp_path`` and, when ``LAVA_TEST_ARTIFACTS`` names a
directory, are copied there too (CI keeps that directory; docs/dashboard.md says so).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ARTIFACTS_ENV = "LAVA_TEST_ARTIFACTS"
START_SECONDS = 30.0
# Attaching waits for chromium's first page (its renderer process); on a machine running two
# suites at once (load ~10 on 2 cores) that passed Playwright's default 30 s once
# (`connect_over_cdp: Timeout 30000ms exceeded` after "<ws connected>"), and with three at once
# 120 s once, while later attaches to the same chromium took 15-20 s. So the process is handed
# out only once its first page is up (FIRST_PAGE_SECONDS), and attaching finds it ready. The
# bounds are against a hang, not speed checks.
ATTACH_SECONDS = 120.0
FIRST_PAGE_SECONDS = 300.0
# the flags a container needs (no sandbox, no GPU) and none that change what a page does
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run")


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (scripts/test.sh installs it)"
    return found


@contextmanager
def chromium_process() -> Iterator[str]:
    """A headless chromium for the block; yields its CDP endpoint (``http://127.0.0.1:port``).

    Port 0: chromium binds a free port itself and writes it to ``DevToolsActivePort`` in its
    profile directory, which is read once it appears (no port picked before it is bound)."""
    with tempfile.TemporaryDirectory(prefix="lava-chromium-") as profile:
        process = subprocess.Popen(
            [
                chromium_path(),
                *FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",  # its first page: the lightest there is
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + START_SECONDS
            while not (active.exists() and active.read_text().strip()):
                assert process.poll() is None, "chromium exited at start"
                assert time.monotonic() < deadline, f"chromium not listening in {START_SECONDS} s"
                time.sleep(0.05)
            endpoint = f"http://127.0.0.1:{active.read_text().split()[0]}"
            _wait_for_first_page(endpoint, process)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_for_first_page(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    """Until chromium lists its first page as a target (``/json/list``)."""
    deadline = time.monotonic() + FIRST_PAGE_SECONDS
    while True:
        assert process.poll() is None, "chromium exited before its first page"
        try:
            with urllib.request.urlopen(f"{endpoint}/json/list", timeout=10) as reply:
                if any(t.get("type") == "page" for t in json.loads(reply.read())):
                    return
        except OSError:
            pass  # not answering yet
        assert time.monotonic() < deadline, f"chromium has no page after {FIRST_PAGE_SECONDS} s"
        time.sleep(0.1)


@asynccontextmanager
async def browser(cdp_endpoint: str) -> AsyncIterator[Browser]:
    """Playwright attached to the module's chromium (each test opens its own contexts)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        attached = await playwright.chromium.connect_over_cdp(
            cdp_endpoint, timeout=ATTACH_SECONDS * 1000
        )
        try:
            yield attached
        finally:
            await attached.close()


@asynccontextmanager
async def launched() -> AsyncIterator[Browser]:
    """A chromium of its own for one test (the end-to-end test: one browser in its module)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        own = await playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-gpu"],
            timeout=ATTACH_SECONDS * 1000,
        )
        try:
            yield own
        finally:
            await own.close()


async def keep_screenshot(page: Page, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    """A screenshot under ``tmp_path`` (and in ``$LAVA_TEST_ARTIFACTS`` when set)."""
    shot = tmp_path / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=full_page)
    kept = os.environ.get(ARTIFACTS_ENV)
    if kept:
        await asyncio.to_thread(_copy, shot, Path(kept))
    return shot


def _copy(shot: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, directory / shot.name)
