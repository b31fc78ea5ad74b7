"""The operator dashboard in Debian's headless chromium, against the real control service
(moto + RabbitMQ): every panel says what is stuck and why, each action works through its form
(Stop after a confirmation), a viewer sees no action, and the pages work at 360 px wide and
with JavaScript off. One chromium for the module; screenshots kept (tests/support/browser.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

from devstack.testing.events import expired, frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.labeling.jobs import JobManager
from shared.settings import Settings
from shared.tasks.model import ClipFailure
from tests.support.browser import browser, chromium_process, keep_screenshot
from tests.support.control import ControlProcess, control_service
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, inputs, make

pytestmark = [pytest.mark.integration]

HOURS_AGO = 2  # the seeded tasks were created this long before the test
NARROW: ViewportSize = {"width": 360, "height": 740}
WIDE: ViewportSize = {"width": 1300, "height": 900}
PAGES = (
    "/dashboard",
    "/dashboard/tasks",
    "/dashboard/clips",
    "/dashboard/clips/clip-0",
    "/dashboard/tasks/clip-0.vehicles",
    "/dashboard/tasks/clip-1.vehicles/stop",
)


@pytest.fixture(scope="module")
def cdp() -> Iterator[str]:
    with chromium_process() as endpoint:
        yield endpoint


@pytest.fixture
async def chromium(cdp: str) -> AsyncIterator[Browser]:
    async with browser(cdp) as attached:
        yield attached


async def seed(aws: AwsClients, settings: Settings) -> Settings:
    """What an operator should find: three active tasks, one failed at level 1 (its key
    expired), one clip failed at ingest, and a pedestrians task held by a stopped job."""
    s = dispatch_settings(settings, dispatch__max_expirations=0)
    jobs = await create_jobs(aws, s)
    await JobManager(aws, s).stop("VOTPedestrian")
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=HOURS_AGO))
    dispatcher = make(aws, s, clock, Recorder())
    for i in range(4):
        await dispatcher.on_frames_ready(frames_ready(f"clip-{i}", bucket=s.names.bucket))
    await dispatcher.on_frames_ready(
        frames_ready("clip-p", workflow="pedestrians", bucket=s.names.bucket)
    )
    sent = {m["lava-dedup-id"].split("/")[0]: m for m in await inputs(aws, jobs["VOTVehicle"])}
    key = sent["clip-0.vehicles"]["lava-dedup-id"]
    await dispatcher.on_task_expired(expired("clip-0.vehicles", jobs["VOTVehicle"], key))
    now = clock.now().timestamp()
    store = dispatcher.store
    await store.clips.accept("clip-bad", ["clip-bad.vehicles"], now)
    await store.clips.end("clip-bad", ClipFailure(stage="ingest", reason="not a video"), now)
    return s


@pytest.fixture
async def control(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> AsyncIterator[ControlProcess]:
    s = await seed(aws, settings)
    async with control_service(s, tmp_path, LAVA_CONTROL__PLAIN_LOCALHOST="true") as process:
        yield process


async def sign_in(
    chromium: Browser,
    control: ControlProcess,
    role: str,
    viewport: ViewportSize,
    *,
    javascript: bool = True,
) -> tuple[BrowserContext, Page]:
    context = await chromium.new_context(java_script_enabled=javascript, viewport=viewport)
    page = await context.new_page()
    await page.goto(f"{control.url}/dashboard")
    assert page.url.endswith("/dashboard/login")  # no credential yet
    await page.fill("input[name=token]", control.tokens[role])
    await page.click("form[action='/dashboard/login'] button[type=submit]")
    await page.wait_for_selector("#panel-held")
    return context, page


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector) or "").strip()


async def test_an_operator_sees_what_is_stuck_and_why_and_acts(
    chromium: Browser, control: ControlProcess, tmp_path: Path
) -> None:
    context, page = await sign_in(chromium, control, "operator", WIDE)
    # the script refreshed the panels from the page itself at least once and drew the charts
    await page.wait_for_selector("body[data-refreshed]", state="attached")
    assert await page.evaluate("Chart.getChart('funnel-chart') !== undefined")

    held = await text(page, 'tr[data-held="VOTPedestrian"]')
    assert "Stopped" in held and "stopped by an operator" in held
    job = await text(page, 'tr[data-job="VOTPedestrian"] td[data-job-status]')
    assert job.startswith("Stopped")
    # failures by stage: the ingest failure beside the task's, each with its reason
    assert await text(page, 'h3[data-failure-stage="ingest"]') == "ingest (1)"
    assert "not a video" in await text(page, '#failures tr[data-clip="clip-bad"]')
    failed = await text(page, '#failures tr[data-task="clip-0.vehicles"]')
    assert "expired" in failed.lower()
    # the running total apart from what is where now
    assert await text(page, 'td[data-stage="ingested"]') == "5"
    assert await text(page, 'td[data-stage="level 1"]') == "4"
    # waiting since the last send: the three active vehicles tasks' objects, sent 2 h ago
    assert await text(page, 'td[data-age="1-24 h"]') == "3"
    # clips now: the ingest failure (the seeded task failure's ClipFailed is not applied here)
    assert await text(page, 'b[data-outcome="failed"]') == "1"
    # age and time in stage of an active task
    age = await page.get_attribute(
        '#active tr[data-task="clip-1.vehicles"] td[data-age]', "data-age"
    )
    assert age is not None and int(age) >= HOURS_AGO * 3600 - 60
    await keep_screenshot(page, tmp_path, "dashboard-operator")

    # Stop: a confirmation page first, then the task page says it stopped
    await page.click('#active tr[data-task="clip-1.vehicles"] a.stop')
    await page.wait_for_selector("#confirm-stop")
    await page.fill("#confirm-stop input[name=reason]", "wrong clip")
    await page.click("#confirm-stop button[type=submit]")
    await page.wait_for_selector('#action-result[data-outcome="ok"]')
    assert await text(page, "#task-status") == "stopped"
    # Retry the failed task, from the overview
    await page.goto(f"{control.url}/dashboard")
    await page.click('#failures tr[data-task="clip-0.vehicles"] button.retry')
    await page.wait_for_selector('#action-result[data-outcome="ok"]')
    assert await text(page, "#task-status") == "active"
    # Re-create the stopped job: its next generation starts (Initializing, then InProgress)
    await page.goto(f"{control.url}/dashboard")
    await page.click('tr[data-job="VOTPedestrian"] button.recreate')
    await page.wait_for_selector('#action-result[data-outcome="ok"]')
    row = 'tr[data-job="VOTPedestrian"]'
    state = await page.get_attribute(f"{row} td[data-job-status]", "data-job-status")
    assert state in ("Initializing", "InProgress")
    assert await text(page, f"{row} td[data-generation]") == "2"
    assert await page.query_selector(f"{row} button.recreate") is None
    # a stale form is refused with the reason; a form without the session's token is refused
    await page.goto(f"{control.url}/dashboard/tasks/clip-1.vehicles")
    assert await page.query_selector("button.retry") is None  # stopped: nothing to retry
    token = await page.get_attribute('meta[name="csrf-token"]', "content")
    retry = f"{control.url}/dashboard/tasks/clip-1.vehicles/retry"
    stale = await page.request.post(retry, form={"csrf": token or ""})
    assert stale.status == 409 and "only failed tasks are retried" in await stale.text()
    forged = await page.request.post(retry, form={"csrf": "not-this-session"})
    assert forged.status == 403
    await context.close()

    audits = [line for line in control.log().splitlines() if '"audit"' in line]
    assert any('"tasks.stop"' in a and '"clip-1.vehicles"' in a and '"ok"' in a for a in audits)
    assert any('"tasks.retry"' in a and '"ok"' in a for a in audits)
    assert any('"jobs.recreate"' in a and '"ok"' in a for a in audits)


async def test_a_viewer_sees_no_action(
    chromium: Browser, control: ControlProcess, tmp_path: Path
) -> None:
    context, page = await sign_in(chromium, control, "viewer", WIDE)
    for path in (
        "/dashboard",
        "/dashboard/tasks?status=failed",
        "/dashboard/tasks/clip-0.vehicles",
    ):
        await page.goto(control.url + path)
        assert (
            await page.query_selector("form.inline, a.stop, button.retry, button.recreate") is None
        ), path
    await keep_screenshot(page, tmp_path, "dashboard-viewer")
    # and the confirmation step is not theirs
    answer = await page.goto(f"{control.url}/dashboard/tasks/clip-1.vehicles/stop")
    assert answer is not None and answer.status == 403
    await context.close()


async def test_without_javascript_on_a_narrow_screen(
    chromium: Browser, control: ControlProcess, tmp_path: Path
) -> None:
    context, page = await sign_in(chromium, control, "operator", NARROW, javascript=False)
    assert await page.is_visible("#sign-out button")
    await keep_screenshot(page, tmp_path, "dashboard-narrow-nojs")

    # search: an id goes to its page; the clip page has a timeline of its stages
    await page.fill("header input[name=q]", "clip-0")
    await page.click("header form.search button")
    await page.wait_for_selector("#timeline")
    assert await page.get_attribute('#timeline li[data-stage="ingest"]', "data-state") == "done"
    assert await page.get_attribute('#timeline li[data-stage="level 1"]', "data-state") == "failed"
    await page.goto(f"{control.url}/dashboard/clips/clip-bad")
    ingest = await text(page, '#timeline li[data-stage="ingest"]')
    assert "failed" in ingest and "not a video" in ingest
    await keep_screenshot(page, tmp_path, "clip-timeline-narrow-nojs")

    # filters and pages: 3 active vehicles tasks, 2 a page
    await page.goto(f"{control.url}/dashboard/tasks?status=active&workflow=vehicles&limit=2")
    first = await page.locator("#tasks tbody tr[data-task]").count()
    await page.click("#next-page")
    await page.wait_for_url("**cursor=**")
    second = await page.locator("#tasks tbody tr[data-task]").count()
    assert (first, second) == (2, 1)
    assert await page.query_selector("#next-page") is None
    await page.goto(f"{control.url}/dashboard/tasks?status=active&workflow=pedestrians")
    assert await page.locator("#tasks tbody tr[data-task]").count() == 1
    # a search that is no id lists the active tasks whose id holds it
    await page.fill("header input[name=q]", "3.veh")
    await page.click("header form.search button")
    await page.wait_for_url(re.compile(r"/dashboard/tasks\?q=3\.veh$"))
    assert await page.locator("#tasks tbody tr[data-task]").count() == 1
    assert await page.get_attribute("#tasks tbody tr", "data-task") == "clip-3.vehicles"
    await page.goto(f"{control.url}/dashboard/clips?outcome=failed")
    assert await page.locator("#clips tbody tr[data-clip]").count() == 1
    await page.click('#outcomes a[href$="outcome=labeling"]')
    await page.wait_for_url("**outcome=labeling")
    assert await page.locator("#clips tbody tr[data-clip]").count() == 5

    # Stop without JavaScript: the confirmation page's form does it
    await page.goto(f"{control.url}/dashboard/tasks/clip-2.vehicles")
    await page.click("a.stop")
    await page.click("#confirm-stop button[type=submit]")
    await page.wait_for_selector('#action-result[data-outcome="ok"]')
    assert await text(page, "#task-status") == "stopped"
    await keep_screenshot(page, tmp_path, "task-stopped-narrow-nojs")

    # nothing is wider than the screen (measured by a script: in a context that runs them)
    measure, probe = await sign_in(chromium, control, "operator", NARROW)
    for path in PAGES:
        await probe.goto(control.url + path)
        width = await probe.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], (path, width)
    await measure.close()

    await page.click("#sign-out button")
    await page.wait_for_url("**/dashboard/login")
    await context.close()
