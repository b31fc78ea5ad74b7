"""The hashed lock files under ``requirements/`` and the stamp that ties each to pyproject.toml.

``scripts/lock.sh`` regenerates them with pip-tools (``pip-compile --generate-hashes``) and
writes a first line ``# pyproject-sha256: <digest>`` of what that lock was compiled from (the
project's dependencies, the extras it includes, or the build requirements). The test suite
recomputes the digest, so a dependency changed in pyproject.toml without re-locking fails CI
without needing the network; it also checks every pin carries hashes and satisfies its range.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
STAMP = "# pyproject-sha256: "


@dataclass(frozen=True)
class Lock:
    """One lock file: which part of pyproject.toml it pins."""

    path: str
    extras: tuple[str, ...] = ()
    build: bool = False

    def requirements(self, pyproject: dict[str, object]) -> list[str]:
        if self.build:
            return list(pyproject["build-system"]["requires"])  # type: ignore[index]
        project = pyproject["project"]
        found = list(project["dependencies"])  # type: ignore[index]
        optional = project.get("optional-dependencies", {})  # type: ignore[attr-defined]
        for extra in self.extras:
            found += optional[extra]
        return found


# The production image (the four pipeline services and the CLI) installs production.lock (with
# the tracing extra: traces are off unless OTEL_* asks); the `control` image target adds the
# control extra (control.lock); the `local` target (moto server for the emulated AWS, and every
# component) local.lock; all build the project wheel with build.lock's setuptools.
LOCKS = (
    Lock("requirements/production.lock", extras=("tracing",)),
    Lock("requirements/control.lock", extras=("tracing", "control")),
    Lock("requirements/local.lock", extras=("local", "control", "report")),
    Lock("requirements/build.lock", build=True),
)


def load_pyproject(root: Path = ROOT) -> dict[str, object]:
    return tomllib.loads((root / "pyproject.toml").read_text())


def digest(lock: Lock, pyproject: dict[str, object]) -> str:
    text = json.dumps(sorted(lock.requirements(pyproject)))
    return hashlib.sha256(text.encode()).hexdigest()


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(text: str) -> dict[str, tuple[str, int]]:
    """``name -> (version, number of hashes)`` of a pip-compile output."""
    found: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            found[current] = (match.group(2), 0)
        elif current and "--hash=sha256:" in line:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return found


def problems(lock: Lock, root: Path = ROOT) -> list[str]:
    """Why ``lock`` does not match pyproject.toml (empty: it matches)."""
    path = root / lock.path
    if not path.exists():
        return [f"{lock.path} is missing; run scripts/lock.sh"]
    pyproject = load_pyproject(root)
    text = path.read_text()
    out: list[str] = []
    first = text.splitlines()[0] if text else ""
    if first != STAMP + digest(lock, pyproject):
        out.append(
            f"{lock.path} was compiled from other requirements than pyproject.toml has now; "
            "run scripts/lock.sh"
        )
    pinned = pins(text)
    for name, (version, hashes) in sorted(pinned.items()):
        if hashes == 0:
            out.append(f"{lock.path}: {name}=={version} has no --hash")
    for spec in lock.requirements(pyproject):
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        if name == "lava-pipeline":
            continue
        if name not in pinned:
            out.append(f"{lock.path}: {requirement.name} is not pinned")
        elif not requirement.specifier.contains(pinned[name][0], prereleases=True):
            out.append(
                f"{lock.path}: {requirement.name}=={pinned[name][0]} is outside "
                f"{requirement.specifier}"
            )
    return out


# Code the production image runs (emulators/ runs only from the `local` target).
PRODUCTION_PACKAGES = ("shared", "services", "lava")
# Imports production code makes only on local-only paths, with where they come from instead.
LOCAL_ONLY_IMPORTS = {
    "localstack_client": "the local extra: lava run --aws-endpoint localstack (lava/endpoints.py)",
    # devstack.moto_server is the local AWS stand-in; production never starts it
    "moto": "the local extra: python -m devstack.moto_server",
    "werkzeug": "the local extra (moto[server]): python -m devstack.moto_server",
    "yaml": "dev tooling: lava.deploy.broker reads the overlays' kustomizations",
    # the Label Studio launcher runs under its own venv (scripts/labelstudio.sh)
    "django": "Label Studio's own venv: shared/labeling/labelstudio/launch.py",
    "label_studio": "Label Studio's own venv: shared/labeling/labelstudio/launch.py",
    # an extra the production image leaves out; `lava dataset report` names it when missing
    "matplotlib": "the report extra: lava dataset report (lava/dataset/report.py)",
}
# Code that runs from an image target of its own, with the lock that target installs.
OWN_IMAGE = {"services/control": "requirements/control.lock"}


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Top-level module names imported, leaving out ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def unlocked_imports(root: Path = ROOT) -> list[str]:
    """Third-party modules production code imports that its image's lock does not install
    (production.lock, or the lock of the image target in :data:`OWN_IMAGE`)."""
    owners = packages_distributions()
    project = set(PRODUCTION_PACKAGES) | {"emulators", "devstack", "tests", "bench"}
    out = []
    pinned: dict[str, set[str]] = {}
    for package in PRODUCTION_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            lock = next(
                (v for k, v in OWN_IMAGE.items() if relative.startswith(k + "/")),
                "requirements/production.lock",
            )
            if lock not in pinned:
                pinned[lock] = set(pins((root / lock).read_text()))
            locked = pinned[lock]
            for name in sorted(_runtime_imports(ast.parse(path.read_text()))):
                if name in sys.stdlib_module_names or name in project or name == "__future__":
                    continue
                if name in LOCAL_ONLY_IMPORTS:
                    continue
                dists = {canonicalize_name(d) for d in owners.get(name, [name])}
                if not dists & locked:
                    out.append(f"{relative} imports {name}, not in {lock.rpartition('/')[2]}")
    return out


def stamp(path: str) -> None:
    """Prefix a freshly compiled lock file with its pyproject digest (scripts/lock.sh)."""
    lock = next(lock for lock in LOCKS if lock.path == path)
    target = ROOT / path
    body = target.read_text()
    target.write_text(f"{STAMP}{digest(lock, load_pyproject())}\n{body}")


if __name__ == "__main__":
    stamp(sys.argv[1])
