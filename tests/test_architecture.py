"""The dependency rules of the handbook, checked on the import graph (no process started).

- shared imports no service, emulator, CLI or test code;
- a service imports no other service (services share only event contracts);
- services and the emulator never use the test doubles in ``shared.testing``;
- benchmarks do not import from ``tests``;
- no function is longer than ``MAX_FUNCTION_LINES`` (a long function usually does two
  things: split it where it does), except the few allowed below with their reason.
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


# --- function length ----------------------------------------------------------------------
MAX_FUNCTION_LINES = 60
SIZED = ("shared", "services", "lava", "emulators", "bench")
# "path:qualified name" -> why it stays longer than the limit. Keep it short: an entry whose
# function is gone or back under the limit fails the test, so the list never goes stale.
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}


def _function_lengths(folder: str) -> Iterator[tuple[str, int]]:
    """("path:Class.function", lines from its ``def`` to its last line) for every function."""
    for path in _modules(folder):
        tree = ast.parse(path.read_text(), filename=str(path))
        yield from _lengths(tree, f"{path.relative_to(ROOT)}:")


def _lengths(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            assert child.end_lineno is not None
            yield f"{prefix}{child.name}", child.end_lineno - child.lineno + 1
            yield from _lengths(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _lengths(child, f"{prefix}{child.name}.")
        else:
            yield from _lengths(child, prefix)


def test_no_function_is_longer_than_the_limit() -> None:
    lengths = dict(pair for folder in SIZED for pair in _function_lengths(folder))
    too_long = {
        name: n
        for name, n in lengths.items()
        if n > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS_ALLOWED
    }
    assert not too_long, (
        f"functions over {MAX_FUNCTION_LINES} lines (split each where it does two things, "
        f"or allow it with a reason): {sorted(too_long.items())}"
    )
    stale = {name for name in LONG_FUNCTIONS_ALLOWED if lengths.get(name, 0) <= MAX_FUNCTION_LINES}
    assert not stale, f"allowed long functions that are gone or short now: drop {sorted(stale)}"


def test_the_length_check_sees_nested_and_method_functions() -> None:
    source = "class A:\n    def f(self):\n        def g():\n            pass\n        return 1\n"
    assert dict(_lengths(ast.parse(source), "m:")) == {"m:A.f": 4, "m:A.f.g": 2}
