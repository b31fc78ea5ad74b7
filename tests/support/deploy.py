"""The deployment artefacts as the tests see them: rendered overlays, checkov, the Compose
specification's schema. Every tool comes from scripts/setup.sh; a missing one fails with the
command that installs it instead of skipping (CI must run these checks)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("production", "local")
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
COMPOSE_WHEEL = ROOT / ".venv" / "schemas" / "docker_compose-1.29.2-py2.py3-none-any.whl"
# The Kubernetes release the manifests are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.32.0"
# kustomize features used by the overlays (patch targets by label selector) need kustomize v4+.
MIN_KUSTOMIZE = (4, 0)


def _missing(what: str) -> NoReturn:
    pytest.fail(f"{what} is missing; run `source scripts/setup.sh`", pytrace=False)


@cache
def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        _missing("kubectl")
    out = subprocess.run(
        [found, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    version = json.loads(out).get("kustomizeVersion", "v0.0")
    major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if major_minor < MIN_KUSTOMIZE:
        pytest.fail(f"kubectl's kustomize is {version}; these overlays need v4 or newer")
    return found


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl apply -k deploy/k8s/overlays/<overlay>` would send."""
    text = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def rendered_text(overlay: str) -> str:
    return yaml.safe_dump_all(render(overlay), sort_keys=False)


def of_kind(overlay: str, *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in render(overlay) if doc["kind"] in kinds]


def named(overlay: str, kind: str, name: str) -> dict[str, Any]:
    for doc in of_kind(overlay, kind):
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"{overlay}: no {kind} {name}")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def checkov(paths: list[Path], framework: str) -> dict[str, Any]:
    """checkov's JSON report for ``paths`` (one framework)."""
    if not CHECKOV.exists():
        _missing("checkov")
    args = [str(CHECKOV), "--quiet", "--skip-download", "--output", "json"]
    args += ["--framework", framework]
    for path in paths:
        args += ["--file", str(path)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    report = json.loads(done.stdout)
    # One framework gives one report (a list only when several ran).
    return report[0] if isinstance(report, list) else report  # type: ignore[no-any-return]


def compose_schema() -> dict[str, Any]:
    if not COMPOSE_WHEEL.exists():
        _missing("the Compose specification schema (docker-compose wheel)")
    with zipfile.ZipFile(COMPOSE_WHEEL) as wheel:
        schema: dict[str, Any] = json.loads(wheel.read("compose/config/compose_spec.json"))
    return schema
