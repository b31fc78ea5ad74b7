from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from devstack.faults import FaultSettings
from emulators.settings import EmulatorSettings, LocalSettings
from lava.commands.config import config, documented_variables, processes, replace_table
from shared.settings import (
    ControlSettings,
    DispatcherSettings,
    IngestSettings,
    ListenerSettings,
    PostprocSettings,
    ServiceSettings,
    Settings,
    env_name,
    load_settings,
    settings_fields,
)

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_PAGE = ROOT / "docs" / "reference" / "settings.md"
PRODUCTION = (
    ServiceSettings,
    IngestSettings,
    DispatcherSettings,
    ListenerSettings,
    PostprocSettings,
    ControlSettings,
    Settings,
)


def test_reads_lava_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVA_NAMESPACE", "staging")
    monkeypatch.setenv("LAVA_BROKER__DELIVERY_LIMIT", "9")
    monkeypatch.setenv("LAVA_DISPATCH__RESEND_INTERVAL_SECONDS", "60")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = load_settings()
    assert settings.namespace == "staging"
    assert settings.broker.delivery_limit == 9
    assert settings.dispatch.resend_interval_seconds == 60
    assert settings.aws.endpoint_url == "http://127.0.0.1:4566"
    assert settings.names.exchange == "staging.events"
    # The bucket is named by namespace, account and region (a bare <ns>-data is guessable).
    assert settings.names.bucket == "staging-123456789012-us-east-1"


def test_a_lava_variable_wins_over_the_standard_aws_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws.test")
    monkeypatch.setenv("LAVA_AWS__ENDPOINT_URL", "http://lava.test")
    aws = load_settings().aws
    assert (aws.region, aws.endpoint_url) == ("eu-west-1", "http://lava.test")


def test_real_aws_when_no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LAVA_AWS__ENDPOINT_URL", raising=False)
    assert load_settings().aws.endpoint_url is None


@pytest.mark.parametrize("bad", ["Upper", "has_underscore", "1starts-with-digit", "x" * 30, ""])
def test_namespace_must_fit_every_resource_name(bad: str) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        load_settings(namespace=bad)


def test_a_misspelt_group_variable_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVA_DISPATCH__RESEND_INTERVAL", "60")
    with pytest.raises(ValidationError, match="resend_interval"):
        DispatcherSettings.load()


def test_replace_changes_nested_settings_and_validates_them() -> None:
    base = load_settings(broker__prefetch=4)
    changed = base.replace(dispatch__max_expirations=0, broker__delivery_limit=9, namespace="t1")
    assert (changed.dispatch.max_expirations, changed.broker.delivery_limit) == (0, 9)
    assert changed.broker.prefetch == 4 and changed.namespace == "t1"
    assert base.dispatch.max_expirations == 5  # the original is unchanged
    assert changed.broker.model_fields_set == {"prefetch", "delivery_limit"}
    with pytest.raises(ValueError, match="dispatch__max_expiration"):
        base.replace(dispatch__max_expiration=0)
    with pytest.raises(ValidationError, match="delivery_limit"):
        base.replace(broker__delivery_limit=-1)


def test_production_services_have_no_emulator_or_fault_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_only = {"emulator", "fault"}
    for model in PRODUCTION:
        assert not local_only & set(model.model_fields), model.__name__
    assert "emulator" in EmulatorSettings.model_fields and "emulator" in LocalSettings.model_fields
    # Nonsense in the emulator's and the drills' variables is neither read nor validated.
    monkeypatch.setenv("LAVA_EMULATOR__TIME_SCALE", "not a number")
    monkeypatch.setenv("LAVA_FAULT__AWS_THROTTLE_RATE", "lots")
    monkeypatch.setenv("LAVA_EMULATOR_PROFILE", "ideal")  # a former name, not theirs either
    for model in PRODUCTION:
        model.load()
    monkeypatch.delenv("LAVA_EMULATOR_PROFILE")
    with pytest.raises(ValidationError, match="time_scale"):
        EmulatorSettings.load()
    with pytest.raises(ValidationError, match="aws_throttle_rate"):
        FaultSettings.load()


def test_each_service_loads_only_its_groups() -> None:
    groups = {name: {g for g, _, _ in settings_fields(m)} for name, m in processes().items()}
    common = {None, "log", "broker", "aws", "runtime"}
    assert groups["ingest"] == common | {"ingest"}
    assert groups["postproc"] == common | {"postproc"}
    assert groups["dispatcher"] == common | {"labeling", "labelstudio", "dispatch", "quality"}
    assert groups["listener"] == common | {"labeling", "labelstudio", "listener"}


def test_secrets_are_redacted_in_lava_config_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVA_BROKER__AMQP_URL", "amqp://u:change_me@rabbit/")
    monkeypatch.setenv("LAVA_CONTROL__TOKENS", "ops:operator:" + "ab" * 32)
    monkeypatch.setenv("LAVA_LABELSTUDIO__TOKEN", "hunter3")
    table = CliRunner().invoke(config, ["show"])
    assert table.exit_code == 0, table.output
    assert "dispatch.resend_interval_seconds" in table.output  # the table names the groups
    result = CliRunner().invoke(config, ["show", "--json"])
    assert result.exit_code == 0, result.output
    for output in (table.output, result.output):
        assert not any(secret in output for secret in ("change_me", "hunter3", "abab"))
    shown = json.loads(result.output)
    assert shown["broker"]["amqp_url"] == "**********"
    assert shown["dispatch"]["resend_interval_seconds"] == 5 * 24 * 3600


def test_every_setting_is_documented_in_the_settings_reference() -> None:
    readme = SETTINGS_PAGE.read_text()
    missing = [name for name in documented_variables() if f"`{name}`" not in readme]
    assert not missing, f"docs/reference/settings.md lacks {missing}"
    assert f"`{env_name('emulator', 'time_scale')}`" in readme
    assert replace_table(readme) == readme, (
        "docs/reference/settings.md is stale: run `python docs/hooks/reference.py`"
    )


def test_no_service_or_emulator_loads_the_clis_settings() -> None:
    """A service's entry point loads its own model (``IngestSettings.load()``), never the CLI's
    ``Settings``/``load_settings`` with every group in it."""
    root = ROOT
    found = []
    paths = [*(root / "services").rglob("*.py"), *(root / "emulators").rglob("*.py")]
    for path in sorted(p for p in paths if p.name != "settings.py"):  # LocalSettings composes it
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "shared.settings":
                names = {alias.name for alias in node.names} & {"Settings", "load_settings"}
                found += [f"{path.relative_to(root)} imports {name}" for name in sorted(names)]
    assert found == []


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"LAVA_AWS__ACCOUNT_ID": "ACCOUNT_ID"},
            "invalid settings: LAVA_AWS__ACCOUNT_ID: Value error, an AWS account id is 12 digits",
        ),
        (
            {"LAVA_DISPATCH__RESEND_INTERVAL_SECONDS": "-1"},
            "invalid settings: LAVA_DISPATCH__RESEND_INTERVAL_SECONDS: Input should be greater",
        ),
    ],
)
def test_a_service_with_a_bad_setting_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    line: str,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        DispatcherSettings.load_or_exit()
    assert stopped.value.code == 2
    (printed,) = capsys.readouterr().err.splitlines()
    assert line in printed
