from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lava.commands.config import env_name, replace_table
from shared.settings import Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_reads_lava_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVA_NAMESPACE", "staging")
    monkeypatch.setenv("LAVA_DELIVERY_LIMIT", "9")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = load_settings()
    assert settings.namespace == "staging"
    assert settings.delivery_limit == 9
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.names.exchange == "staging.events"
    # The bucket is named by namespace, account and region (a bare <ns>-data is guessable).
    assert settings.names.bucket == "staging-123456789012-us-east-1"


def test_real_aws_when_no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LAVA_AWS_ENDPOINT_URL", raising=False)
    assert load_settings().aws_endpoint_url is None


@pytest.mark.parametrize("bad", ["Upper", "has_underscore", "1starts-with-digit", "x" * 30, ""])
def test_namespace_must_fit_every_resource_name(bad: str) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        load_settings(namespace=bad)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    missing = [env_name(n) for n in Settings.model_fields if f"`{env_name(n)}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
    assert replace_table(readme) == readme, (
        "README settings table is stale: run `lava config table --write README.md`"
    )
