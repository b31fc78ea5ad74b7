"""The control service with the whole pipeline running (every part a process): a task created
through the API in the original's spec form completes; the dashboard, in a real headless
chromium, shows the counts the API returns, and an operator's Stop (confirmed) stops a task.
Each panel and action on its own: tests/test_dashboard_browser.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.control.auth import Role, new_token
from shared.aws import AwsClients
from shared.labeling.jobs import JobRegistry
from shared.layout import raw_key, s3_uri, sidecar_key
from shared.settings import Settings
from shared.storage import S3Store
from tests.support.broker import wait_until
from tests.support.browser import chromium_path, keep_screenshot, launched
from tests.support.e2e import make_clips, pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DRIVE = {"drive_id": "d-api", "weather": "rainy", "time_of_day": "night", "route": "A1"}
CLIP = {"scene": "tunnel", "traffic": "undefined", "traffic_density": "low"}


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "X-CSRF-Token": "api"}

    async def __call__(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body, headers=self.headers) as reply,
        ):
            data = await reply.json(content_type=None)
            # a task's creation is accepted (202), every other call here answers 200
            assert reply.status == (202 if method == "POST" else 200), (method, path, data)
            return data


async def held_job(aws: AwsClients, settings: Settings) -> str:
    """A level-1 job that nobody labels (registered as a SageMaker job, which no emulator
    serves): its tasks stay active, so one is there to be stopped."""
    registry = JobRegistry(aws, settings)
    template = await registry.get("VOTVehicle")
    assert template is not None
    name = "VOTHeld"
    sns = await aws.sns()
    topics = {
        end: (await sns.create_topic(Name=settings.names.topic(f"{name}-{end}")))["TopicArn"]
        for end in ("input", "output")
    }
    await registry.add(
        template.model_copy(
            update={
                "name": name,
                "gt_name": f"{settings.namespace}-{name}",
                "backend": "sagemaker",
                "input_topic_arn": topics["input"],
                "output_topic_arn": topics["output"],
            }
        )
    )
    return name


async def test_api_spec_task_completes_and_the_dashboard_stops_a_task(
    tmp_path: Path, rabbitmq: str
) -> None:
    chromium_path()  # before the pipeline starts: fail fast without chromium
    operator_token, operator_entry = new_token("otto", Role.OPERATOR)
    (clip,) = make_clips(tmp_path, 1)
    async with pipeline(tmp_path, extra_env={"LAVA_CONTROL__TOKENS": operator_entry}) as run:
        settings = run.settings
        assert settings is not None
        run.spawn("control")
        await run.wait_ready(("control",))
        api = Api(f"http://127.0.0.1:{run.processes['control'].port}", operator_token)
        async with AwsClients(settings) as aws:
            store = S3Store(aws)
            key = raw_key("d-api", "api-clip", ".mp4")
            await store.upload_file(clip.video, settings.names.bucket, key)
            for clip_id in ("api-clip", "held-clip"):
                await store.upload_file(clip.sidecar, settings.names.bucket, sidecar_key(clip_id))
            held = await held_job(aws, settings)
        uri = s3_uri(settings.names.bucket, key)

        # the original's form, through the API, to completion
        spec = {
            "labelingJobs": [
                {
                    "jobName": "VOTVehicle",
                    "jobLevel": 1,
                    "inputConfig": {"clipS3Uri": uri, "fps": 2},
                },
                {
                    "jobName": "AdjVOTVehicle",
                    "jobLevel": 2,
                    "inputConfig": {"chainFromJobName": "VOTVehicle"},
                },
            ],
            "drive": DRIVE,
            "clip": CLIP,
            "clipId": "api-clip",
        }
        created = await api("POST", "/v1/tasks/spec", spec)
        assert created["levels"] == [["VOTVehicle"], ["AdjVOTVehicle"]]
        task_id = created["task_id"]
        held_spec = {
            "labelingJobs": [
                {"jobName": held, "jobLevel": 1, "inputConfig": {"clipS3Uri": uri, "fps": 2}}
            ],
            "drive": DRIVE,
            "clip": CLIP,
            "clipId": "held-clip",
        }
        held_task = (await api("POST", "/v1/tasks/spec", held_spec))["task_id"]

        async def state(task: str) -> str | None:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{api.url}/v1/tasks/{task}", headers=api.headers) as reply,
            ):
                return (await reply.json())["task"]["status"] if reply.status == 200 else None

        await wait_until(lambda: _is(state(task_id), "completed"), timeout=180, interval=0.5)
        await wait_until(lambda: _is(state(held_task), "active"), timeout=60, interval=0.5)
        clip_view = await api("GET", "/v1/clips/api-clip")
        assert clip_view["status"] == "completed" and clip_view["labels_uri"]
        status = await api("GET", "/v1/status")
        funnel = {s["stage"]: s["tasks"] for s in status["funnel"]}
        assert funnel["completed"] == 1 and funnel["level 1"] == 1

        # the dashboard, in chromium
        async with launched() as browser:
            page = await browser.new_page(viewport={"width": 1400, "height": 1250})
            await page.goto(f"{api.url}/dashboard")
            assert page.url.endswith("/dashboard/login")  # no credential yet
            await page.fill("input[name=token]", operator_token)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#funnel")
            # the JavaScript refreshed the page's panels at least once, charts drawn
            # selectors, not wait_for_function: the page's CSP forbids eval, Playwright's too
            await page.wait_for_selector("body[data-refreshed]", state="attached")
            status = await api("GET", "/v1/status")
            for stage in status["funnel"]:
                shown = await page.text_content(f'td[data-stage="{stage["stage"]}"]')
                assert shown == str(stage["tasks"]), stage
            assert await page.text_content("#tasks-total") == str(status["tasks"])
            assert await page.evaluate("Chart.getChart('funnel-chart') !== undefined")
            await keep_screenshot(page, tmp_path, "dashboard-before-stop", full_page=False)

            await page.click(f'#active tr[data-task="{held_task}"] a.stop')
            await page.click("#confirm-stop button[type=submit]")
            await page.wait_for_selector('#action-result[data-outcome="ok"]')
            await page.goto(f"{api.url}/dashboard")
            await page.wait_for_selector('td[data-stage="stopped"]:text-is("1")')
            await keep_screenshot(page, tmp_path, "dashboard")
        shown = await api("GET", f"/v1/tasks/{held_task}")
        assert shown["task"]["status"] == "stopped"
        assert shown["task"]["stopped_by"] == "token:otto"
        assert all(o["status"] == "stopped" for o in shown["objects"])
        log = await asyncio.to_thread((run.run_dir / "control.log").read_text)
        audits = [json.loads(line) for line in log.splitlines() if '"audit"' in line]
        assert [a["target"] for a in audits if a["action"] == "tasks.stop"] == [held_task]


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)
