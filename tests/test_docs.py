"""The README stays a short entry point whose links resolve; the docs' generated pages are fresh."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 12 * 1024  # issue 25: what it is, a diagram, two commands, folders, events, links
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _reference_hook() -> ModuleType:
    hook = ROOT / "docs" / "hooks" / "reference.py"
    spec = importlib.util.spec_from_file_location("docs_reference", hook)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md: {size} bytes > {README_LIMIT}; prose goes to docs/"


def test_every_readme_link_resolves() -> None:
    broken = []
    for target in LINK.findall(README.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = target.split("#", 1)[0]
        if path and not (ROOT / path).exists():
            broken.append(target)
    assert broken == []


def test_the_docs_pages_named_in_mkdocs_exist() -> None:
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert nav, "mkdocs.yml names no page"
    assert [page for page in nav if not (ROOT / "docs" / page).exists()] == []


def test_generated_reference_pages_are_fresh() -> None:
    assert _reference_hook().stale() == []
