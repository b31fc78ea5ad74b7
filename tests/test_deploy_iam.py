"""Each deployed component's IAM policy grants exactly the AWS operations its code calls.

The operations come from reading the code (lava/deploy/aws_calls.py), so a call added
anywhere a service can reach fails here until `lava deploy iam --write` updates its policy."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lava.deploy.aws_calls import CallGraph, Component, explain, usage
from lava.deploy.iam import (
    DEAD_OUTPUT_QUEUE,
    DENY_OUTPUT_FORGERY,
    GRANTS,
    GROUND_TRUTH_ROLE,
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    PROVISION,
    actions,
    components,
    grants,
    policy,
    policy_path,
    render,
    render_ground_truth_role,
)

GRAPH = CallGraph()
COMPONENTS = components()


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_policy_grants_exactly_what_the_component_calls(component: Component) -> None:
    path = policy_path(component)
    assert path.exists(), f"{path} is missing: run `lava deploy iam --write`"
    committed = json.loads(path.read_text())
    wanted = policy(usage(component, GRAPH), component.name)
    more, less = actions(committed) - actions(wanted), actions(wanted) - actions(committed)
    assert (more, less) == (set(), set()), (
        f"{path.name} grants more {sorted(more)} / less {sorted(less)} than the code calls; "
        "run `lava deploy iam --write` (and `lava deploy iam --why` to see why)"
    )
    assert path.read_text() == render(component, GRAPH), f"{path.name}: resources differ"


def test_there_is_a_policy_for_every_component_and_no_other() -> None:
    files = {p.stem for p in (Path(__file__).parents[1] / "deploy" / "iam").glob("*.json")}
    assert files == {c.name for c in COMPONENTS} | {GROUND_TRUTH_ROLE}


def test_every_statement_names_its_resources() -> None:
    for component in COMPONENTS:
        for statement in json.loads(policy_path(component).read_text())["Statement"]:
            if statement["Resource"] == "*":
                # the only actions AWS authorizes on no particular resource
                assert set(statement["Action"]) <= GRANTS_WITHOUT_RESOURCE
            assert statement["Effect"] == "Allow" or statement in DENY_OUTPUT_FORGERY


def _statements(component: Component) -> list[dict[str, Any]]:
    return list(json.loads(policy_path(component).read_text())["Statement"])


def _resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [found] if isinstance(found, str) else list(found)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_no_component_may_publish_outputs_or_feed_the_output_queue(component: Component) -> None:
    """Issue 24, finding 1: only Ground Truth's role publishes to an output topic; the
    dispatcher publishes to input topics only, the listener sends only to its DLQ."""
    statements = _statements(component)
    assert all(deny in statements for deny in DENY_OUTPUT_FORGERY)
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        if "sns:Publish" in statement["Action"]:
            assert _resources(statement) == [INPUT_TOPICS]
        if "sqs:SendMessage" in statement["Action"]:
            assert _resources(statement) == [DEAD_OUTPUT_QUEUE]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_s3_grants_are_per_prefix_and_read_only_where_the_component_only_reads(
    component: Component,
) -> None:
    """Issue 24, finding 6: no component gets or puts any object of the bucket."""
    for statement in _statements(component):
        actions_ = set(statement["Action"])
        if not any(a.startswith("s3:") and "Object" in a for a in actions_):
            continue
        for resource in _resources(statement):
            assert not resource.endswith("}/*"), (component.name, resource)  # not the bucket
        if statement["Sid"] == "ReadObjects":
            assert actions_ == {"s3:GetObject"}
    reads = {r for s in _statements(component) if s["Sid"] == "ReadObjects" for r in _resources(s)}
    writes = {
        r for s in _statements(component) if s["Sid"] == "WriteObjects" for r in _resources(s)
    }
    if component.name == "listener":
        assert not any(w.endswith(("/gt-output/*", "/clips/*")) for w in writes)
    if component.name == "ingest":
        assert any(r.endswith("/raw/*") for r in reads)
        assert not any(w.endswith("/raw/*") for w in writes)  # uploads are the rig's


def _routes() -> list[tuple[str, str]]:
    from fastapi.routing import APIRoute

    from services.control import api, dashboard, dataset_routes
    from services.control.pages import site

    found = []
    for router in (api.router, dataset_routes.router, dashboard.router, site.router):
        for route in router.routes:
            if isinstance(route, APIRoute):
                endpoint = route.endpoint
                entry = f"{endpoint.__module__}:{endpoint.__qualname__}"
                methods = sorted(route.methods or ())
                found += [(f"{method} {route.path}", entry) for method in methods]
    return found


def test_the_control_policy_covers_every_call_each_route_can_reach() -> None:
    """Issue 24, finding 6: each control route, followed through the code, calls only what
    control's policy grants; POST /v1/jobs reaches the SageMaker and SNS calls of a new job."""
    control = next(c for c in COMPONENTS if c.name == "control")
    granted = actions(json.loads(policy_path(control).read_text()))
    routes = _routes()
    assert len(routes) > 10
    reached: dict[str, set[str]] = {}
    for route, entry in routes:
        walked = Component(f"control {route}", entry_points=(entry,), excluded=control.excluded)
        needed = {a for kind in grants(usage(walked, GRAPH)).values() for a in kind}
        assert needed <= granted, f"{route} reaches {sorted(needed - granted)}, not granted"
        reached[route] = needed
    create = next(v for k, v in reached.items() if k == "POST /v1/jobs")
    assert {
        "sns:CreateTopic",
        "sagemaker:CreateLabelingJob",
        "sagemaker:DescribeLabelingJob",
    } <= create


def test_the_ground_truth_execution_role_is_the_only_output_publisher() -> None:
    path = Path(__file__).parents[1] / "deploy" / "iam" / f"{GROUND_TRUTH_ROLE}.json"
    assert path.read_text() == render_ground_truth_role(), "run `lava deploy iam --write`"
    document = json.loads(path.read_text())
    publish = [s for s in document["Statement"] if "sns:Publish" in s["Action"]]
    assert [_resources(s) for s in publish] == [[OUTPUT_TOPICS]]
    assert all(not r.endswith("}/*") for s in document["Statement"] for r in _resources(s))


GRANTS_WITHOUT_RESOURCE = {g.action for g in GRANTS.values() if g.resource == "*"}


def test_services_are_found_by_their_package_and_production_never_gets_the_emulator() -> None:
    names = [c.name for c in COMPONENTS]
    assert {"ingest", "dispatcher", "listener", "postproc", "provision"} <= set(names)
    assert not any("emulator" in n for n in names)
    provision = usage(PROVISION, GRAPH)
    assert ("sagemaker", "CreateLabelingJob") in provision.operations
    assert ("sqs", "CreateQueue") not in provision.operations  # EmulatorBackend is excluded


def test_the_why_of_a_grant_is_a_call_chain_from_the_component() -> None:
    chains = explain(PROVISION, "CreateLabelingJob", GRAPH)
    assert chains and all(c.endswith("lava.commands.jobs:create_defaults") for c in chains)
    assert chains[0].startswith("shared.labeling.backends:SageMakerBackend.create")


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in ("shared", "services", "emulators", "lava"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_analysis_follows_clients_through_helpers_attributes_and_paginators(
    tmp_path: Path,
) -> None:
    root = _project(
        tmp_path,
        {
            "shared/helpers.py": """
                from typing import Any

                async def each(db: Any, operation: str, **request: Any) -> None:
                    async for page in db.get_paginator(operation).paginate(**request):
                        pass

                async def arn(sqs: Any, url: str) -> None:
                    await sqs.get_queue_attributes(QueueUrl=url)

                class Store:
                    def __init__(self, aws: Any) -> None:
                        self._aws = aws

                    async def save(self) -> None:
                        self.s3 = await self._aws.s3()
                        await self.s3.put_object(Bucket="b", Key="k", Body=b"")

                    async def unused_here(self) -> None:
                        sns = await self._aws.sns()
                        await sns.publish(TopicArn="t", Message="m")

                class Bus:
                    async def publish(self) -> None:  # not an AWS call: no client
                        pass
            """,
            "services/svc/__init__.py": "",
            "services/svc/__main__.py": """
                from shared.helpers import Bus, Store, arn, each

                async def main(aws) -> None:
                    db = await aws.dynamodb()
                    await each(db, "Query", TableName="t")
                    sqs = await aws.client("sqs")
                    await arn(sqs, "u")
                    await Store(aws).save()
                    await Bus().publish()
            """,
        },
    )
    found = usage(Component("svc", "services.svc"), CallGraph(root))
    assert found.operations == {
        ("dynamodb", "Query"),
        ("sqs", "GetQueueAttributes"),
        ("s3", "PutObject"),
    }
