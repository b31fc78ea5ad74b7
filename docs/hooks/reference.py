"""Generated reference pages of the docs site, and the check that keeps them fresh.

`mkdocs build` runs `on_pre_build` (hooks in mkdocs.yml): every generated page is made again
from the code - the settings tables from the pydantic models, the event contracts' JSON
schemas, the control API's OpenAPI document - and a page on disk that differs fails the build
with the command that refreshes it. Run `python docs/hooks/reference.py` to write them.
The CLI reference is rendered by mkdocs-click at build time, so it cannot go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
REFRESH = "python docs/hooks/reference.py"


def _events_page() -> str:
    from shared.events import PAYLOAD_TYPES, SUPERSEDED, event_json_schema

    out = [
        "# Event contracts",
        "",
        "Generated from `shared/events.py` (`" + REFRESH + "`); `lava events schema TYPE` prints",
        "the same envelope schema. Every event is an envelope `{event_id, type, version,",
        "occurred_at, correlation_id, payload}` on the `<ns>.events` topic exchange, routing key =",
        "type.",
        "",
        "| type | version | summary |",
        "|---|---|---|",
    ]
    for model in PAYLOAD_TYPES:
        summary = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
        name = model.EVENT_TYPE
        out.append(f"| [`{name}`](#{name.lower()}) | {model.VERSION} | {summary} |")
    if SUPERSEDED:
        old = ", ".join(f"`{t}` v{v}" for t, v in sorted(SUPERSEDED))
        out += ["", f"Older versions still read (upcast by `decode_event`): {old}."]
    for model in PAYLOAD_TYPES:
        schema = event_json_schema(model.EVENT_TYPE, model.VERSION)
        out += [
            "",
            f"## {model.EVENT_TYPE}",
            "",
            " ".join((model.__doc__ or "").split()),
            "",
            "```json",
            json.dumps(schema, indent=2, sort_keys=True),
            "```",
        ]
    return "\n".join(out) + "\n"


def _openapi() -> dict[str, Any]:
    from services.control.app import create_app
    from services.control.context import Control
    from shared.settings import ControlSettings

    # Only the document is wanted: nothing of the Control is called while it is generated.
    control = Control(
        settings=ControlSettings(),
        aws=None,
        publish=None,
        auth=None,  # type: ignore[arg-type]
        budget=None,
        now=None,
        ready=None,
        exports=None,  # type: ignore[arg-type]
    )
    document: dict[str, Any] = create_app(control).openapi()
    return document


def _openapi_page(document: dict[str, Any]) -> str:
    out = [
        "# Control API (OpenAPI)",
        "",
        "Generated from the control service's FastAPI application (`" + REFRESH + "`). The",
        "whole OpenAPI 3.1 document is [openapi.json](openapi.json); a running service serves it",
        "at `/openapi.json`. Roles and behaviour: [the control service](../services/control.md).",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            summary = operation.get("summary", "").replace("|", "\\|")
            out.append(f"| `{method.upper()}` | `{path}` | {summary} |")
    return "\n".join(out) + "\n"


def _settings_page(current: str) -> str:
    from lava.commands.config import replace_table

    return replace_table(current)


def expected() -> dict[Path, str]:
    """Every generated page, as the code makes it now."""
    sys.path.insert(0, str(ROOT))
    document = _openapi()
    settings = DOCS / "reference" / "settings.md"
    return {
        DOCS / "reference" / "events.md": _events_page(),
        DOCS / "reference" / "openapi.json": json.dumps(document, indent=2, sort_keys=True) + "\n",
        DOCS / "reference" / "control-api.md": _openapi_page(document),
        settings: _settings_page(settings.read_text()),
    }


def stale() -> list[str]:
    return [
        str(path.relative_to(ROOT))
        for path, text in expected().items()
        if not path.exists() or path.read_text() != text
    ]


def on_pre_build(config: Any) -> None:
    from mkdocs.exceptions import PluginError

    found = stale()
    if found:
        raise PluginError(f"stale generated docs: {', '.join(found)}; run `{REFRESH}`")


if __name__ == "__main__":
    for path, text in expected().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
