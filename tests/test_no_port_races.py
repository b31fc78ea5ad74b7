"""No port is chosen before it is bound: the tree holds no free-port helper and no fixed ports.

A helper that binds port 0, reads the port, closes the socket and hands the number to a
process that binds it later leaves a window in which anything else can take it (a clean-clone
CI run failed with EADDRINUSE that way; a fixed 8080 in a test failed another). Servers are
handed a listening socket instead (``shared/listening.py``, docs/ports.md).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("shared", "services", "emulators", "lava", "tests", "bench", "scripts")
# Names of the helpers this test exists to keep out (portpicker's among them).
HELPER_NAMES = re.compile(
    r"\b(free_port|find_free_port|get_free_port|unused_port|pick_unused_port|"
    r"get_open_port|find_open_port|available_port|random_port|port_in_use|portpicker)\b"
)
# A server port set to a literal in a test, bench or local run (0 = any free one is fine).
FIXED_PORT = re.compile(
    r"(health_port|webhook_port|control__port|HEALTH_PORT|WEBHOOK_PORT|CONTROL__PORT)"
    r"[\"']?\s*[=:,]\s*[\"']?([1-9][0-9]*)"
)
LOCAL_RUNS = ("tests", "bench", "lava")


def python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def bind_then_release(source: str) -> list[str]:
    """Functions that bind a socket and give something back while closing it: the port read
    from a socket that is gone by the time anyone uses it."""
    found: list[str] = []
    if ".bind(" not in source or "getsockname" not in source:
        return found  # parsing only the files that could hold one keeps this test fast
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        calls = {
            n.func.attr
            for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        if not {"bind", "getsockname"} <= calls or "listen" in calls:
            continue
        gives_back = any(isinstance(n, ast.Return) and n.value for n in ast.walk(node))
        holds = any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))
        if gives_back and not holds:
            found.append(node.name)
    return found


def test_the_checks_catch_the_old_helper_and_pass_a_held_socket() -> None:
    old = (
        "def pick(host='127.0.0.1'):\n"
        "    with socket.socket() as s:\n"
        "        s.bind((host, 0))\n"
        "        return s.getsockname()[1]\n"
    )
    assert bind_then_release(old) == ["pick"]
    assert HELPER_NAMES.search("port = free_port()")
    assert FIXED_PORT.search('"LAVA_RUNTIME__HEALTH_PORT": "8080"')
    assert FIXED_PORT.search("runtime__health_port=8080")
    assert not FIXED_PORT.search("runtime__health_port=0")
    held = (ROOT / "tests/support/ports.py").read_text()
    assert bind_then_release(held) == []  # closed_port yields while it holds the socket
    assert bind_then_release((ROOT / "shared/listening.py").read_text()) == []


def test_no_helper_picks_a_port_for_another_process_to_bind() -> None:
    this = Path(__file__).resolve()
    problems = []
    for path in python_files(*SCANNED):
        if path == this:
            continue
        source = path.read_text()
        rel = path.relative_to(ROOT)
        problems += [f"{rel}: bind-close-reuse in {name}()" for name in bind_then_release(source)]
        problems += [f"{rel}: {m[0]}" for m in HELPER_NAMES.finditer(source)]
    for path in sorted((ROOT / "scripts").glob("*.sh")):
        problems += [
            f"{path.relative_to(ROOT)}: {m[0]}" for m in HELPER_NAMES.finditer(path.read_text())
        ]
    assert not problems, "bind a listening socket and hand it down instead:\n" + "\n".join(problems)


def test_no_local_run_or_test_starts_a_server_on_a_fixed_port() -> None:
    problems = [
        f"{path.relative_to(ROOT)}: {m[0]}"
        for path in python_files(*LOCAL_RUNS)
        if path != Path(__file__).resolve()
        for m in FIXED_PORT.finditer(path.read_text())
    ]
    assert not problems, "use port 0 or a handed-down socket:\n" + "\n".join(problems)
