"""The dependency rules of the handbook, checked on the import graph (no process started).

- shared imports no service, emulator, CLI, local tooling or test code;
- a service imports no other service (services share only event contracts);
- services and the emulator never use the test doubles in ``devstack.testing``;
- the four pipeline services' import closures reach no local tooling, control service, Label
  Studio code, nor the libraries only the control service and the dataset report need;
- benchmarks do not import from ``tests``;
- no function is longer than ``MAX_FUNCTION_LINES`` (a long function usually does two
  things: split it where it does), except the few allowed below with their reason.
"""

from __future__ import annotations

import ast
import functools
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
    forbidden = ("services", "emulators", "lava", "devstack", "tests", "bench")
    assert _violations("shared", forbidden) == []


@pytest.mark.parametrize(
    "service", sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = tuple(
        f"services.{p.name}"
        for p in (ROOT / "services").iterdir()
        if (p / "__init__.py").exists() and p.name != service
    )
    forbidden = (*others, "emulators", "lava", "tests", "bench", "devstack.testing")
    assert _violations(f"services/{service}", forbidden) == []


def test_the_emulator_uses_no_test_doubles() -> None:
    assert _violations("emulators", ("services", "tests", "bench", "devstack.testing")) == []


def test_benchmarks_do_not_import_tests() -> None:
    assert _violations("bench", ("tests",)) == []


# --- function length ----------------------------------------------------------------------
MAX_FUNCTION_LINES = 60
SIZED = ("shared", "services", "lava", "emulators", "devstack", "bench")
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


# --- one name per concept ------------------------------------------------------------------
PRODUCTION = ("shared", "services", "lava", "emulators", "devstack")
# class name -> why two production modules define it. An entry whose name is defined once (or
# not at all) fails the test, so the list never goes stale.
DUPLICATE_CLASS_NAMES_ALLOWED: dict[str, str] = {}


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for the name and cycle checks."""
    return ast.parse(path.read_text(), filename=str(path))


def _class_definitions(folders: tuple[str, ...]) -> dict[str, list[str]]:
    """Class name -> the modules that define it (any nesting level), over ``folders``."""
    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in _modules(folder):
            for node in ast.walk(_tree(path)):
                if isinstance(node, ast.ClassDef):
                    found.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    return found


def test_no_class_name_is_defined_twice_in_production_code() -> None:
    definitions = _class_definitions(PRODUCTION)
    twice = {
        name: paths
        for name, paths in definitions.items()
        if len(paths) > 1 and name not in DUPLICATE_CLASS_NAMES_ALLOWED
    }
    assert not twice, (
        "one concept, one name: rename one side to say what it is, or merge them "
        f"if they are the same concept: {sorted(twice.items())}"
    )
    stale = {n for n in DUPLICATE_CLASS_NAMES_ALLOWED if len(definitions.get(n, [])) < 2}
    assert not stale, f"allowed duplicate class names that are unique now: drop {sorted(stale)}"


# --- import cycles -------------------------------------------------------------------------
GRAPHED = ("shared", "services", "lava", "emulators", "devstack", "tests", "bench")


def _module_paths() -> dict[str, Path]:
    """Dotted module name -> file, for every project module (a package is its ``__init__``)."""
    paths = {}
    for folder in GRAPHED:
        for path in _modules(folder):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return paths


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The names an import statement may load: ``from a import b`` loads ``a`` and ``a.b``
    (``b`` may be a submodule); relative imports resolve against ``module``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere (top level, in functions, under
    ``TYPE_CHECKING``): an import cycle is a cycle however lazily one side loads it."""
    paths = _module_paths()
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        graph[module] = {
            name
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in _imported(node, module, is_package)
            if name in paths and name != module
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = _pop_component(stack, on_stack, node)
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == root:
            return component


def test_no_import_cycle_among_project_modules() -> None:
    cycles = _cycles(_import_graph())
    assert not cycles, (
        "import cycles (make the dependency run one way: move what both need into a module "
        f"of its own, or a factory above both): {cycles}"
    )


def test_the_cycle_check_sees_lazy_and_relative_imports() -> None:
    graph = {"p": set(), "p.a": {"p.b"}, "p.b": set(), "p.c": {"p.d"}, "p.d": {"p.c"}}
    lazy = ast.parse("def f():\n    from . import a\n").body[0]
    assert isinstance(lazy, ast.FunctionDef)
    statement = lazy.body[0]
    assert isinstance(statement, ast.ImportFrom)
    assert _imported(statement, "p.b", is_package=False) == ["p", "p.a"]
    graph["p.b"].add("p.a")
    assert sorted(_cycles(graph)) == [["p.a", "p.b"], ["p.c", "p.d"]]


# --- what a pipeline image loads ----------------------------------------------------------
PIPELINE_SERVICES = ("ingest", "dispatcher", "listener", "postproc")
# Project code a pipeline service must not load: local tooling, the control service, Label
# Studio (a plug-in loaded by name when configured: shared.labeling.backend_kinds and
# services.listener.service); and the libraries of the [control] and [report] extras.
OUTSIDE_THE_PIPELINE = (
    "devstack",
    "services.control",
    "shared.labeling.labelstudio",
    "emulators.labelstudio",
    "services.listener.labelstudio",
    "services.listener.labelstudio_service",
    "services.listener.webhooks",
)
EXTRAS_ONLY = ("matplotlib", "fastapi", "uvicorn", "starlette", "jwt")


def _closure(start: str) -> tuple[set[str], set[str]]:
    """(project modules, third-party top-level names) that ``start`` imports, directly or
    through other project modules: every import statement counts, in a function or not, as
    does each package a module sits in (importing ``a.b`` runs ``a/__init__``)."""
    paths = _module_paths()
    seen: set[str] = set()
    external: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = paths[module]
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(node, module, path.name == "__init__.py"):
                    if name in paths:
                        todo.append(name)
                    elif name and name.split(".")[0] not in GRAPHED:
                        external.add(name.split(".")[0])
    return seen, external


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("service", PIPELINE_SERVICES)
def test_a_pipeline_service_loads_no_local_tooling_control_or_label_studio(service: str) -> None:
    modules, external = _closure(f"services.{service}.__main__")
    assert f"services.{service}.service" in modules  # the walk follows the entry point
    reached = sorted(m for m in modules if _within(m, OUTSIDE_THE_PIPELINE))
    assert reached == [], f"services.{service} reaches {reached}: load it by name, or move it"
    libraries = sorted(external & set(EXTRAS_ONLY))
    assert libraries == [], f"services.{service} imports {libraries} (an extra's libraries)"


def test_the_closure_follows_function_level_imports_and_parent_packages() -> None:
    modules, _ = _closure("shared.labeling.labelstudio.backend")
    assert {"shared", "shared.labeling", "shared.labeling.backends"} <= modules
    lazy, external = _closure("lava.cli")
    assert "lava.errors" in lazy  # imported inside main()
    assert "click" in external and "lava" not in external
