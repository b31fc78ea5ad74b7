"""The frame every dashboard page shares: head (viewport, CSP-safe assets), header with the
navigation, the search box and Sign out, and the small formatters pages use."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.control.auth import Principal, Role
from services.control.context import Control
from services.control.security import credential
from services.control.sessions import Session

REFRESH_SECONDS = 5  # how often the overview's script re-reads it
NAV = (("Overview", "/dashboard"), ("Tasks", "/dashboard/tasks"), ("Clips", "/dashboard/clips"))


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


class Visitor:
    """Who is looking at a page, and the CSRF token their forms carry."""

    def __init__(self, who: Principal, session: Session | None) -> None:
        self.who = who
        self.session = session
        # a bearer caller (OIDC proxy) proves with the field's presence; a session with its token
        self.csrf = session.csrf if session else "bearer"

    @property
    def operator(self) -> bool:
        return self.who.may(Role.OPERATOR)


async def signed_in(request: Request, ctl: Control) -> Visitor | None:
    try:
        return Visitor(*await credential(request, ctl))
    except HTTPException:
        return None


def to_login() -> Response:
    return RedirectResponse("/dashboard/login", status_code=303)


def page(ctl: Control, visitor: Visitor, title: str, body: str, *, live: bool = False) -> str:
    """A whole page. ``live``: the overview, whose panels the script refreshes."""
    scripts = (
        '<script src="/static/chart.umd.min.js" defer></script>\n'
        '<script src="/static/dashboard.js" defer></script>'
        if live
        else ""
    )
    refresh = f' data-refresh="{REFRESH_SECONDS}"' if live else ""
    nav = "".join(f'<a href="{href}">{e(name)}</a>' for name, href in NAV)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{e(visitor.csrf)}">
<title>{e(title)} - LAVA control - {e(ctl.settings.namespace)}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css">
{scripts}
</head>
<body data-operator="{str(visitor.operator).lower()}"{refresh}>
<header><h1><a href="/dashboard">LAVA labeling pipeline</a></h1>
<nav>{nav}</nav>
<form class="search" method="get" action="/dashboard/search" role="search">
<input type="search" name="q" placeholder="task or clip id" aria-label="task or clip id">
<button type="submit">Find</button></form>
<span>namespace <b>{e(ctl.settings.namespace)}</b></span>
<span id="who">{e(visitor.who.name)} ({e(visitor.who.role.value)})</span>
{'<span id="updated">rendered by the server</span>' if live else ""}
{sign_out(visitor.session)}</header>
<main>
{body}
</main>
</body></html>"""


def sign_out(session: Session | None) -> str:
    """The Sign out button of a session (behind an OIDC proxy, signing out is the proxy's)."""
    if session is None:
        return ""
    return (
        '<form id="sign-out" method="post" action="/dashboard/logout">'
        f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
        '<button type="submit">Sign out</button></form>'
    )


def post_button(visitor: Visitor, action: str, label: str, css: str, **fields: str) -> str:
    """A one-button POST form with the CSRF token; nothing at all for a visitor."""
    if not visitor.operator:
        return ""
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
        for k, v in {"csrf": visitor.csrf, **fields}.items()
    )
    return (
        f'<form class="inline" method="post" action="{e(action)}">{hidden}'
        f'<button type="submit" class="{e(css)}">{e(label)}</button></form>'
    )


def stop_link(visitor: Visitor, task_id: str) -> str:
    """Stop goes through a confirmation page first (a link: it works without JavaScript)."""
    if not visitor.operator:
        return ""
    return f'<a class="button stop" href="/dashboard/tasks/{e(task_id)}/stop">Stop</a>'


def table(head: Iterable[str], rows: Iterable[str], empty: str, table_id: str = "") -> str:
    rows = list(rows)
    heads = "".join(f"<th>{e(h)}</th>" for h in head)
    body = (
        "".join(rows)
        or f'<tr class="none"><td colspan="{len(list(head)) or 1}">{e(empty)}</td></tr>'
    )
    ident = f' id="{e(table_id)}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{heads}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def when(at: float | None) -> str:
    """An instant as RFC 3339 UTC (second precision), in a <time> element."""
    if at is None:
        return "-"
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f'<time datetime="{stamp}">{stamp}</time>'


def span(seconds: float | None) -> str:
    """A duration for people: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def task_link(task_id: str) -> str:
    return f'<a href="/dashboard/tasks/{e(task_id)}">{e(task_id)}</a>'


def clip_link(clip_id: str) -> str:
    return f'<a href="/dashboard/clips/{e(clip_id)}">{e(clip_id)}</a>'


def notice(result: str | None) -> str:
    """What the last action did (a fixed message per code: nothing from the URL is shown)."""
    text = RESULTS.get(result or "")
    return f'<p id="action-result" role="status" data-outcome="ok">{e(text)}</p>' if text else ""


RESULTS = {
    "stopped": "Stopped: nothing more is sent for this task.",
    "retried": "Retried: its waiting data objects are sent again by the dispatcher's sweep.",
    "recreated": "Re-created: a new generation of the job takes input.",
}
