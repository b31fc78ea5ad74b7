"""The dependency rules of the handbook, checked on the import graph (no process started).

- shared imports no service, emulator, CLI or test code;
- a service imports no other service (services share only event contracts);
- services and the emulator never use the test doubles in ``shared.testing``;
- benchmarks do not import from ``tests``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _violations(folder: str, forbidden: tuple[str, ...], allowed: str = "") -> list[str]:
    found = []
    for path in _modules(folder):
        for name in _imports(path):
            if allowed and (name == allowed or name.startswith(allowed + ".")):
                continue
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_shared_depends_on_nothing_above_it() -> None:
    assert _violations("shared", ("services", "emulators", "lava", "tests", "bench")) == []


@pytest.mark.parametrize(
    "service", sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = tuple(
        f"services.{p.name}"
        for p in (ROOT / "services").iterdir()
        if (p / "__init__.py").exists() and p.name != service
    )
    forbidden = (*others, "emulators", "lava", "tests", "bench", "shared.testing")
    assert _violations(f"services/{service}", forbidden) == []


def test_the_emulator_uses_no_test_doubles() -> None:
    assert _violations("emulators", ("services", "tests", "bench", "shared.testing")) == []


def test_benchmarks_do_not_import_tests() -> None:
    assert _violations("bench", ("tests",)) == []
