"""Making Label Studio's template data directory: a failed ``label-studio init`` says why in
one line and never prints the template user's password or token (they are on its command
line). A stand-in executable plays Label Studio: the real one is proven by the e2e tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.labeling.labelstudio.server import LabelStudioInitFailed, template


def fake_install(root: Path, script: str) -> None:
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (root / "venv" / ".lava-complete").write_text("test\n")
    executable = bin_dir / "label-studio"
    executable.write_text(f"#!/bin/sh\n{script}\n")
    executable.chmod(0o755)


def test_a_failed_init_says_its_last_line_without_the_secrets(tmp_path: Path) -> None:
    fake_install(
        tmp_path,
        'echo "Traceback (most recent call last):" >&2\n'
        "echo \"TypeError: Unknown option 'send_default_pii'\" >&2\nexit 1",
    )
    with pytest.raises(LabelStudioInitFailed) as caught:
        template(tmp_path)
    message = str(caught.value)
    assert "exit 1" in message and "Unknown option 'send_default_pii'" in message
    assert "\n" not in message and "--password" not in message and "--user-token" not in message
    assert not (tmp_path / "template.token").exists()  # nothing half-made taken for whole
    assert not list(tmp_path.glob("template-*"))  # nor left behind


def test_an_init_that_echoes_its_arguments_has_the_secrets_masked(tmp_path: Path) -> None:
    """An argument error prints the command line: its password and token are masked."""
    fake_install(tmp_path, 'echo "label-studio: error: unrecognized arguments: $*" >&2\nexit 2')
    with pytest.raises(LabelStudioInitFailed) as caught:
        template(tmp_path)
    message = str(caught.value)
    assert "unrecognized arguments" in message and "--user-token ***" in message
    assert "--password ***" in message


def test_a_successful_init_makes_the_template_once(tmp_path: Path) -> None:
    fake_install(tmp_path, 'mkdir -p "$3"; echo "$@" > "$3/args"')
    path, token = template(tmp_path)
    assert path == tmp_path / "template" and len(token) == 40
    assert "--user-token " + token in (path / "args").read_text()
    assert template(tmp_path) == (path, token)  # made once, then reused
