"""Every command of the `lava` tree explains itself: each option has help text, each argument is
named in its command's help, and every list/show command can answer in JSON."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from lava.cli import COMMANDS, cli

# A command with one of these names lists or shows something, so it must take --json.
LISTING = {"list", "show", "status", "query", "describe"}


def command_tree() -> list[tuple[str, click.Command]]:
    """Every command under `lava` (the lazily loaded groups included) with its full name."""
    found: list[tuple[str, click.Command]] = [("lava", cli)]
    context = click.Context(cli)
    pending = [(f"lava {name}", cli.get_command(context, name)) for name in sorted(COMMANDS)]
    while pending:
        path, command = pending.pop()
        assert command is not None, path
        found.append((path, command))
        if isinstance(command, click.Group):
            pending += [(f"{path} {name}", sub) for name, sub in command.commands.items()]
    return sorted(found, key=lambda item: item[0])


def test_the_tree_holds_every_group_and_command() -> None:
    names = {path for path, _ in command_tree()}
    assert {f"lava {name}" for name in COMMANDS} <= names
    assert {"lava tasks show", "lava jobs list", "lava stack status", "lava config show"} <= names


def test_every_option_has_help_and_every_argument_is_explained() -> None:
    missing = []
    for path, command in command_tree():
        if not (command.help or "").strip():
            missing.append(f"{path}: no docstring")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{path} {param.opts[0]}: no help")
            if isinstance(param, click.Argument):
                name = param.human_readable_name
                if name not in (command.help or ""):
                    missing.append(f"{path} {name}: not named in the command's help")
    assert not missing, "\n".join(missing)


def test_every_list_and_show_command_takes_json() -> None:
    without = [
        path
        for path, command in command_tree()
        if path.rsplit(" ", 1)[-1] in LISTING
        and not any("--json" in param.opts for param in command.params)
    ]
    assert not without, f"no --json: {', '.join(without)}"


@pytest.mark.parametrize("path", [path for path, _ in command_tree()])
def test_help_renders_for(path: str) -> None:
    result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
