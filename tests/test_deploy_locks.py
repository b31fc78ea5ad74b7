"""The image installs from hashed lock files that match pyproject.toml (scripts/lock.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lava.deploy.locks import LOCKS, STAMP, Lock, pins, problems, unlocked_imports

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.path)
def test_each_lock_file_matches_pyproject_and_pins_every_package_with_hashes(lock: Lock) -> None:
    assert problems(lock) == []


def test_a_dependency_changed_without_relocking_is_caught(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    pyproject = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('"click>=8.1,<9",', '"click>=8.1,<9",\n    "tomli-w>=1",')
    )
    lock = LOCKS[0]
    (tmp_path / lock.path).write_text((ROOT / lock.path).read_text())
    found = problems(lock, tmp_path)
    assert any("run scripts/lock.sh" in p for p in found)
    assert any("tomli-w is not pinned" in p for p in found)


def test_the_production_lock_carries_no_aws_emulator_or_test_tooling() -> None:
    production = pins((ROOT / "requirements/production.lock").read_text())
    assert {"moto", "pytest", "hypothesis", "mypy", "ruff"}.isdisjoint(production)
    assert "moto" in pins((ROOT / "requirements/local.lock").read_text())


def test_the_pipeline_image_leaves_the_control_and_report_extras_out() -> None:
    production = pins((ROOT / "requirements/production.lock").read_text())
    control = pins((ROOT / "requirements/control.lock").read_text())
    assert {"fastapi", "uvicorn", "pyjwt", "matplotlib"}.isdisjoint(production)
    assert {"fastapi", "uvicorn", "pyjwt"} <= set(control)


def test_lock_files_start_with_their_stamp() -> None:
    for lock in LOCKS:
        assert (ROOT / lock.path).read_text().startswith(STAMP)


def test_the_production_lock_installs_everything_production_code_imports() -> None:
    assert unlocked_imports() == []
