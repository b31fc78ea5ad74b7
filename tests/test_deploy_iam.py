"""Each deployed component's IAM policy grants exactly the AWS operations its code calls.

The operations come from reading the code (lava/deploy/aws_calls.py), so a call added
anywhere a service can reach fails here until `lava deploy iam --write` updates its policy."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lava.deploy.aws_calls import CallGraph, Component, explain, usage
from lava.deploy.iam import (
    GRANTS,
    PROVISION,
    actions,
    components,
    policy,
    policy_path,
    render,
)

GRAPH = CallGraph()
COMPONENTS = components()


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_policy_grants_exactly_what_the_component_calls(component: Component) -> None:
    path = policy_path(component)
    assert path.exists(), f"{path} is missing: run `lava deploy iam --write`"
    committed = json.loads(path.read_text())
    wanted = policy(usage(component, GRAPH))
    more, less = actions(committed) - actions(wanted), actions(wanted) - actions(committed)
    assert (more, less) == (set(), set()), (
        f"{path.name} grants more {sorted(more)} / less {sorted(less)} than the code calls; "
        "run `lava deploy iam --write` (and `lava deploy iam --why` to see why)"
    )
    assert path.read_text() == render(component, GRAPH), f"{path.name}: resources differ"


def test_there_is_a_policy_for_every_component_and_no_other() -> None:
    files = {p.stem for p in (Path(__file__).parents[1] / "deploy" / "iam").glob("*.json")}
    assert files == {c.name for c in COMPONENTS}


def test_every_statement_names_its_resources() -> None:
    for component in COMPONENTS:
        for statement in json.loads(policy_path(component).read_text())["Statement"]:
            if statement["Resource"] == "*":
                # the only actions AWS authorizes on no particular resource
                assert set(statement["Action"]) <= GRANTS_WITHOUT_RESOURCE
            assert statement["Effect"] == "Allow"


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
