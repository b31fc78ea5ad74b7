"""Label Studio is a plug-in loaded by name: choosing its kind still gets its code, and a
process that does not choose it never imports it (the static side: test_architecture.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.listener.service import LABEL_STUDIO_SIDE, build
from shared.aws import AwsClients
from shared.labeling.backend_kinds import BACKENDS, backend_for
from shared.labeling.backends import BackendError
from shared.plugins import load
from shared.runtime import ServiceRuntime
from shared.settings import ListenerSettings


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_every_kind_loads_its_backend(kind: str) -> None:
    settings = ListenerSettings.load()
    backend = backend_for(kind, AwsClients(settings), settings)
    assert backend.kind == kind
    assert type(backend).__module__ == BACKENDS[kind].partition(":")[0]


def test_an_unknown_kind_names_the_known_ones() -> None:
    settings = ListenerSettings.load()
    with pytest.raises(BackendError, match="unknown backend 'gt' \\(emulator, labelstudio, "):
        backend_for("gt", AwsClients(settings), settings)


def test_a_target_must_name_module_and_attribute() -> None:
    with pytest.raises(ValueError, match="is not 'module:attribute'"):
        load("shared.plugins")


@pytest.mark.parametrize("url", ["", "http://127.0.0.1:8081"])
async def test_the_listener_adds_its_label_studio_side_only_when_configured(url: str) -> None:
    settings = ListenerSettings.load(labelstudio__url=url)
    runtime = ServiceRuntime("listener", settings, consumer=None, uses_bus=False)
    await build(runtime)
    loops = [name for name, _ in runtime._loops]
    assert ("labelstudio-webhooks" in loops) is bool(url)
    assert callable(load(LABEL_STUDIO_SIDE))


def test_a_ground_truth_dispatcher_and_listener_import_no_label_studio_code() -> None:
    probe = (
        "import sys, services.dispatcher.service, services.listener.service; "
        "print(sorted(m for m in sys.modules if 'labelstudio' in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
