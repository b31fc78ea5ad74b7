"""What the CLI prints (``lava.output``): rich tables, plain when piped, or one JSON document."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from lava.cli import cli
from lava.output import fields, print_json, show, table
from shared.events import PAYLOAD_TYPES
from tests.support.cli import field_values, table_rows
from tests.support.ports import closed_port

ANSI = "\x1b["
LONG = "a reason long enough to wrap on any terminal " * 8


def test_a_piped_table_is_plain_text_one_row_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    show(
        "2 task(s)",
        table(
            ("TASK", "SENDS", "REASON"),
            [("clip-1.vehicles", 12, LONG), ("clip-2.lanes", 3, None)],
            title="tasks",
            numeric=("SENDS",),
        ),
        fields([("task", "clip-1.vehicles"), ("level 1 (current)", "VOTVehicle")]),
    )
    out = capsys.readouterr().out
    assert ANSI not in out and "─" not in out and "│" not in out
    assert all(line == line.rstrip() for line in out.splitlines())
    lines = out.splitlines()
    assert lines[:3] == ["2 task(s)", "", "tasks"]
    assert lines[3].split() == ["TASK", "SENDS", "REASON"]
    assert lines[4] == f"clip-1.vehicles     12  {LONG.strip()}"  # nothing wraps
    assert table_rows(out, "TASK")[1] == {"TASK": "clip-2.lanes", "SENDS": "3", "REASON": "-"}
    assert field_values(out.split("\n\n")[-1]) == {
        "task": "clip-1.vehicles",
        "level 1 (current)": "VOTVehicle",
    }


def test_cells_are_text_never_markup(capsys: pytest.CaptureFixture[str]) -> None:
    show(table(("TASK", "REASON"), [("[bold]t[/bold]", "[Errno 111] refused :smile:")]))
    out = capsys.readouterr().out
    assert "[bold]t[/bold]  [Errno 111] refused :smile:" in out


def test_a_table_without_rows_shows_only_its_title(capsys: pytest.CaptureFixture[str]) -> None:
    show(table(("TASK", "REASON"), [], title="failures: 0"), table(("CLIP",), []), "end")
    assert capsys.readouterr().out == "failures: 0\n\nend\n"


def test_on_a_terminal_prose_wraps_and_ids_stay_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stdout is a terminal
    monkeypatch.setenv("COLUMNS", "60")
    show(table(("TASK", "REASON"), [("clip-1.vehicles-with-a-long-id", LONG)]))
    out = capsys.readouterr().out
    assert ANSI in out and "─" in out  # bold header, header rule
    lines = out.splitlines()
    assert len(lines) > 4 and all(len(_plain(line)) <= 60 for line in lines)
    assert "clip-1.vehicles-with-a-long-id" in lines[2]


def _plain(line: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", line)


class Thing(BaseModel):
    name: str
    count: int


def test_print_json_writes_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"things": [Thing(name="a", count=1)], "total": 1})
    assert json.loads(capsys.readouterr().out) == {
        "things": [{"name": "a", "count": 1}],
        "total": 1,
    }


def test_events_list_as_a_table_and_as_json() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["events", "list"])
    assert shown.exit_code == 0, shown.output
    rows = table_rows(shown.output, "TYPE")
    assert [r["TYPE"] for r in rows] == [m.EVENT_TYPE for m in PAYLOAD_TYPES]
    assert rows[0]["VERSION"] == "v1" and "capture rig" in rows[0]["SUMMARY"]
    as_json = runner.invoke(cli, ["events", "list", "--json"])
    listed = json.loads(as_json.output)
    assert [(e["type"], e["version"]) for e in listed] == [
        (m.EVENT_TYPE, m.VERSION) for m in PAYLOAD_TYPES
    ]
    assert listed[0]["summary"] == rows[0]["SUMMARY"]


def test_config_show_as_a_table_and_as_json_secrets_masked() -> None:
    secret = "s3cr3t-pw"
    env = {"LAVA_BROKER__AMQP_URL": f"amqp://u:{secret}@h:5672/", "LAVA_NAMESPACE": "ns-shown"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["config", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    values = {r["SETTING"]: r["VALUE"] for r in table_rows(shown.output, "SETTING")}
    assert values["namespace"] == "ns-shown"
    assert secret not in shown.output and "**********" in values.values()
    as_json = runner.invoke(cli, ["config", "show", "--json"], env=env)
    document = json.loads(as_json.output)
    assert secret not in as_json.output and "ns-shown" in json.dumps(document)
    assert len(values) == _leaves(document)  # every setting, nested ones flattened


def _leaves(value: object) -> int:
    if isinstance(value, dict) and value:
        return sum(_leaves(v) for v in value.values())
    return 1


def test_stack_status_reports_both_down_with_next_steps_in_both_forms(
    tmp_path: object,
) -> None:
    with closed_port() as no_broker, closed_port() as no_aws:
        _both_down_in_both_forms(tmp_path, no_broker, str(no_aws))


def _both_down_in_both_forms(tmp_path: object, no_broker: int, port: str) -> None:
    env = {
        "LAVA_STATE_DIR": str(tmp_path),
        "LAVA_BROKER__AMQP_URL": f"amqp://guest:guest@127.0.0.1:{no_broker}/",
        "AWS_ENDPOINT_URL": "",
    }
    runner = CliRunner()
    shown = runner.invoke(cli, ["stack", "status", "--port", port], env=env)
    assert shown.exit_code == 1
    rows = {r["COMPONENT"]: r for r in table_rows(shown.output, "COMPONENT")}
    assert rows["AWS endpoint"]["STATE"].startswith("DOWN")
    assert rows["AWS endpoint"]["NEXT STEP"] == f"start it with: lava stack up --port {port}"
    assert "rabbitmq-server -detached" in rows["RabbitMQ"]["NEXT STEP"]
    as_json = runner.invoke(cli, ["stack", "status", "--port", port, "--json"], env=env)
    assert as_json.exit_code == 1
    document = json.loads(as_json.output)
    assert document["healthy"] is False
    assert [c["up"] for c in document["components"]] == [False, False]
    assert all(c["next_step"] for c in document["components"])
