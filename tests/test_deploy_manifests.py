"""deploy/k8s renders, validates against the Kubernetes and KEDA schemas, passes checkov, and
holds the hardening the platform review asks for; docker-compose.yml is a valid Compose file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from kubernetes_validate import validate as validate_kubernetes

from shared.names import Namespace
from tests.support.deploy import (
    KUBERNETES_VERSION,
    OVERLAYS,
    ROOT,
    checkov,
    compose_schema,
    named,
    of_kind,
    pod_spec,
    render,
    rendered_text,
)

CONSUMERS = ("ingest", "dispatcher", "listener", "postproc")  # scaled by KEDA
SERVICES = (*CONSUMERS, "control")
WORKLOADS = ("Deployment", "Job")
KEDA_MODELS: dict[str, Any] = {
    "ScaledObject": keda.ScaledObject,
    "TriggerAuthentication": keda.TriggerAuthentication,
}


def _strip_defaults(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_defaults(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_defaults(v) for v in value]
    return value


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_pinned_kubernetes_and_keda_schemas(
    overlay: str,
) -> None:
    problems = []
    for doc in render(overlay):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("keda.sh/"):
            model = KEDA_MODELS[doc["kind"]]
            parsed = model.model_validate(doc)
            # The models ignore unknown fields; a field lost in the round trip is a typo.
            again = _strip_defaults(parsed.model_dump(by_alias=True, exclude_unset=True))
            if again != doc:
                problems.append(f"{name}: fields outside the KEDA schema")
            continue
        try:
            validate_kubernetes(doc, KUBERNETES_VERSION, strict=True)
        except Exception as exc:
            problems.append(f"{name}: {exc}")
    assert problems == []


def test_checkov_passes_the_rendered_overlays_and_the_dockerfile_with_justified_skips(
    tmp_path: Path,
) -> None:
    files = []
    for overlay in OVERLAYS:
        path = tmp_path / f"{overlay}.yaml"
        path.write_text(rendered_text(overlay))
        files.append(path)
    for framework, paths in (("kubernetes", files), ("dockerfile", [ROOT / "Dockerfile"])):
        report = checkov(paths, framework)
        results = report["results"]
        failed = [
            f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]
        ]
        assert failed == [], framework
        assert report["summary"]["passed"] > 0, f"checkov ran no {framework} check"
        unjustified = [
            c["check_id"]
            for c in results.get("skipped_checks", [])
            if len(c["suppress_comment"]) < 20
        ]
        assert unjustified == []


def test_the_namespace_enforces_the_restricted_pod_security_standard() -> None:
    for overlay in OVERLAYS:
        (namespace,) = of_kind(overlay, "Namespace")
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(overlay: str) -> None:
    for workload in of_kind(overlay, *WORKLOADS):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp = {v["name"]: v for v in spec["volumes"]}["tmp"]
        assert tmp["emptyDir"]["sizeLimit"], name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            for key in ("cpu", "memory"):
                assert resources["requests"][key] and resources["limits"][key], (name, key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_account_probes_budget_and_a_grace_longer_than_its_drain(
    overlay: str,
) -> None:
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for b in of_kind(overlay, "PodDisruptionBudget")
    }
    for service in SERVICES:
        deployment = named(overlay, "Deployment", f"lava-{service}")
        spec = pod_spec(deployment)
        assert spec["serviceAccountName"] == f"lava-{service}"
        account = named(overlay, "ServiceAccount", f"lava-{service}")
        assert account["automountServiceAccountToken"] is False
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
            f":role/lava-{service}"
        )
        (container,) = spec["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["timeoutSeconds"] >= 1, (service, probe)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        grace = float(env["LAVA_RUNTIME__SHUTDOWN_GRACE_SECONDS"]["value"])
        # the runtime drains handlers, then loops, each within the grace (shared/runtime.py)
        assert spec["terminationGracePeriodSeconds"] > 2 * grace, service
        assert spec["topologySpreadConstraints"], service
        assert f"lava-{service}" in budgets


def test_ingest_derives_its_clips_at_once_from_its_pod_limits() -> None:
    # LAVA_INGEST__CONCURRENCY 0 (the default): the service reads the cgroup's CPU and memory
    # limits (docs/services/ingest.md, Ingest memory), so the pod's limits are the only knobs
    for overlay in OVERLAYS:
        (container,) = pod_spec(named(overlay, "Deployment", "lava-ingest"))["containers"]
        assert "LAVA_INGEST__CONCURRENCY" not in {e["name"] for e in container["env"]}
        assert (
            container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"]
        )


def test_network_policies_deny_by_default_and_admit_only_monitoring_to_metrics() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind("production", "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = [
        rule
        for name, p in policies.items()
        for rule in p.get("ingress", [])
        if name != "lava-control-ingress"
    ]
    monitoring = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    assert ingress == [
        {"from": [{"namespaceSelector": monitoring}], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    # the control API: from the ingress controller, to its own pods and port only
    control = policies["lava-control-ingress"]
    assert control["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "lava-control"}}
    assert [p["port"] for r in control["ingress"] for p in r["ports"]] == [8090]
    ports = sorted(
        port["port"] for p in policies.values() for r in p.get("egress", []) for port in r["ports"]
    )
    assert ports == [53, 53, 443, 443, 5671]  # DNS (UDP, TCP), AWS / S3 endpoints, AMQPS


def test_keda_scales_each_consumer_on_its_own_queue() -> None:
    settings = named("production", "ConfigMap", "lava-settings")
    names = Namespace(settings["data"]["LAVA_NAMESPACE"])
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind("production", "ScaledObject")}
    assert sorted(scaled) == sorted(f"lava-{s}" for s in CONSUMERS)
    for service in ("ingest", "dispatcher", "postproc"):
        (trigger,) = scaled[f"lava-{service}"]["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == names.queue(service)
    (trigger,) = scaled["lava-listener"]["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"].endswith("/" + names.queue_url_name("gt-output"))
    # KEDA owns the replica counts
    for service in CONSUMERS:
        assert "replicas" not in named("production", "Deployment", f"lava-{service}")["spec"]


def test_the_provisioning_job_is_named_after_the_image_version_and_bounded() -> None:
    (job,) = of_kind("production", "Job")
    (container,) = pod_spec(job)["containers"]
    tag = container["image"].rsplit(":", 1)[1]
    assert job["metadata"]["name"] == f"lava-provision-{tag}"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_no_secret_values_are_in_any_overlay() -> None:
    for overlay in OVERLAYS:
        assert of_kind(overlay, "Secret") == []
    example = yaml.safe_load_all((ROOT / "deploy/k8s/secrets.example.yaml").read_text())
    assert all(doc["kind"] == "Secret" for doc in example if doc)


def test_the_emulator_moto_and_rabbitmq_run_only_in_the_local_overlay() -> None:
    local_only = {"lava-gt-emulator", "lava-moto", "lava-rabbitmq"}
    production = {d["metadata"]["name"] for d in of_kind("production", "Deployment")}
    local = {d["metadata"]["name"] for d in of_kind("local", "Deployment")}
    assert production.isdisjoint(local_only)
    assert local_only <= local


def test_compose_file_is_valid_binds_to_loopback_and_keeps_the_management_ui_off() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # The schema names draft 2019-09 by a URI jsonschema does not know (a trailing '#').
    jsonschema.Draft201909Validator(compose_schema()).validate(compose)
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert re.match(r"127\.0\.0\.1:\d+:\d+$", str(port)), (name, port)
        if "management" in service.get("image", ""):
            assert service.get("profiles"), f"{name} runs the management UI by default"
        if service.get("image") == "lava-pipeline:local" and "build" in service:
            assert service["build"]["target"] == "local"


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Instructions per build stage, by stage name (continuation lines joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_the_image_builds_from_hashed_locks_runs_as_a_numeric_user_and_ships_no_moto() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = _stages(dockerfile)
    assert list(stages)[-1] == "production"  # the default target
    base = stages["python-base"][0]
    assert re.fullmatch(
        r"FROM python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})? AS python-base", base
    )
    for stage in ("deps", "local-deps", "app"):
        # every requirements file installed is a lock, checked against its hashes
        installs = [i for i in stages[stage] if " install " in i and " -r " in i]
        assert installs and all("--require-hashes" in i for i in installs), stage
    assert "COPY requirements/production.lock /tmp/requirements.lock" in stages["deps"]
    for target in ("production", "local"):
        assert stages[target][-1] == "USER 10001:10001", target
    production = " ".join(stages["production"])
    assert "--from=deps " in production and "local-deps" not in production
    # the dependency layer comes before, and independently of, the project's code
    assert stages["production"].index("COPY --from=deps /opt/venv /opt/venv") < stages[
        "production"
    ].index("COPY --from=app /opt/app /opt/app")
