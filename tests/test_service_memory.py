"""What a service process holds besides its work (docs/ingestperf.md, "Where the service's
memory goes"): botocore's models loaded compactly, optional libraries kept out, upload bodies
read in place. Bytes and module lists, never times."""

from __future__ import annotations

import ast
import gc
import io
import itertools
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from botocore.loaders import create_loader
from botocore.regions import EndpointResolver
from botocore.session import Session

from shared.aws_models import ENDPOINT_SERVICES, compact_loader
from shared.declined_imports import UNUSED_BY_SERVICES, decline
from shared.storage import SharedBody

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("s3", "dynamodb")


def _documented(model: dict[str, Any]) -> list[str]:
    places = [("service", model)]
    places += [(f"operation {n}", o) for n, o in model["operations"].items()]
    for name, shape in model["shapes"].items():
        places.append((f"shape {name}", shape))
        places += [(f"member {name}.{m}", v) for m, v in shape.get("members", {}).items()]
    return [where for where, part in places if "documentation" in part]


@pytest.mark.parametrize("service", MODELS)
def test_service_models_load_as_plain_dicts_without_their_documentation(service: str) -> None:
    model = compact_loader(Session()).load_service_model(service, "service-2")
    assert type(model) is dict and type(model["shapes"]) is dict
    assert _documented(model) == []
    # what botocore reads from the model keeps its text (a KeyError otherwise)
    for param in model.get("clientContextParams", {}).values():
        assert "documentation" in param


@pytest.mark.parametrize("service", MODELS)
def test_a_client_from_compact_models_has_the_same_operations_and_shapes(service: str) -> None:
    plain = Session().get_service_model(service)
    session = Session()
    session.register_component("data_loader", compact_loader(session))
    compact = session.get_service_model(service)
    assert compact.operation_names == plain.operation_names
    for name in plain.operation_names:
        ours, theirs = compact.operation_model(name), plain.operation_model(name)
        assert ours.http == theirs.http and ours.metadata == theirs.metadata
        for shape in (ours.input_shape, ours.output_shape):
            other = theirs.input_shape if shape is ours.input_shape else theirs.output_shape
            assert (shape is None) == (other is None)
            if shape is not None and other is not None:
                assert _structure(shape) == _structure(other)


def _structure(shape: Any, depth: int = 3) -> Any:
    """A shape's serialization-relevant structure (names, types, locations), a few levels deep."""
    members = getattr(shape, "members", {}) if depth else {}
    return (
        shape.name,
        shape.type_name,
        shape.serialization,
        sorted((n, _structure(m, depth - 1)) for n, m in members.items()),
    )


def test_the_endpoints_of_the_services_we_call_resolve_as_with_the_full_table() -> None:
    full_data = create_loader().load_data("endpoints")
    full = EndpointResolver(full_data, uses_builtin_data=True)
    compact = EndpointResolver(
        compact_loader(Session()).load_data("endpoints"), uses_builtin_data=True
    )
    checked = 0
    for partition in full_data["partitions"]:
        for service, region in itertools.product(sorted(ENDPOINT_SERVICES), partition["regions"]):
            for fips, dualstack in itertools.product((False, True), repeat=2):
                assert _resolve(compact, service, region, fips, dualstack) == _resolve(
                    full, service, region, fips, dualstack
                ), (service, region, fips, dualstack)
                checked += 1
    assert checked > 1000


def _resolve(resolver: EndpointResolver, *args: Any) -> Any:
    service, region, fips, dualstack = args
    try:
        return resolver.construct_endpoint(
            service, region, use_dualstack_endpoint=dualstack, use_fips_endpoint=fips
        )
    except Exception as exc:  # the same refusal either way
        return type(exc).__name__


def test_a_service_left_out_resolves_from_its_partition_defaults() -> None:
    compact = EndpointResolver(compact_loader(Session()).load_data("endpoints"), True)
    resolved = compact.construct_endpoint("ec2", "eu-west-1")
    assert resolved is not None and resolved["hostname"] == "ec2.eu-west-1.amazonaws.com"


def test_the_compact_models_hold_well_under_half_the_bytes() -> None:
    def held(loader: Any) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            kept = [loader.load_data("endpoints")]
            kept += [loader.load_service_model(s, "service-2") for s in MODELS]
            kept += [loader.load_service_model(s, "endpoint-rule-set-1") for s in MODELS]
            gc.collect()
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    plain, compact = held(create_loader()), held(compact_loader(Session()))
    assert compact < 0.4 * plain, (plain, compact)


def test_an_upload_body_reads_the_bytes_in_place() -> None:
    jpeg = bytes(range(256)) * 4096
    body = SharedBody(jpeg)
    with body.getbuffer() as view:  # how aiohttp sizes a BytesIO body
        assert view.obj is jpeg and len(view) == len(jpeg)
    assert body.read() == jpeg
    with io.BytesIO(jpeg).getbuffer() as copied:  # what a plain BytesIO does instead
        assert copied.obj is not jpeg


def test_a_declined_import_fails_as_if_the_package_were_absent() -> None:
    code = (
        "import sys\n"
        "from shared.declined_imports import decline\n"
        "print(decline(('os', 'lava_not_installed')))\n"
        "try:\n"
        "    import lava_not_installed\n"
        "except ModuleNotFoundError:\n"
        "    print('absent')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['os']", "absent"]  # os was already loaded: too late


def test_the_ingest_process_loads_no_optional_library_nor_boto3() -> None:
    code = (
        "import sys\n"
        "from shared.declined_imports import decline\n"
        "decline()\n"
        "import services.ingest.service, structlog\n"
        "structlog.get_logger().warning('logging still works')\n"
        f"print(sorted(n for n in {[*UNUSED_BY_SERVICES, 'boto3']!r} if sys.modules.get(n)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
    assert "logging still works" in out.stdout + out.stderr


def test_the_ingest_entry_point_declines_before_it_imports_the_service() -> None:
    tree = ast.parse((ROOT / "services" / "ingest" / "__main__.py").read_text())
    order = [
        node.value.func.id
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        else getattr(node, "module", None)
        for node in tree.body
    ]
    assert order.index("decline") < order.index("services.ingest.service")


def test_decline_reports_what_was_already_imported() -> None:
    assert decline(("sys",)) == ["sys"]
