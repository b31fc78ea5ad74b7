"""CSRF: a state-changing request proves it was not sent by another site, whatever its credential.

Two checks, both on every POST/PUT/PATCH/DELETE, whether the credential is the dashboard's
session cookie or a bearer token (an OIDC proxy in front of the dashboard adds the bearer to
whatever the browser sends, so it is as ambient as a cookie):

1. **Origin.** A browser names the sender of a cross-site request: ``Sec-Fetch-Site`` other
   than ``same-origin``/``none``, or an ``Origin`` other than this service's
   (``LAVA_CONTROL__PUBLIC_ORIGIN``, else the request's own Host), is refused. A client that
   is not a browser sends neither header.
2. **Proof.** The header ``X-CSRF-Token`` (or, for the dashboard's own HTML forms, the form
   field ``csrf``): with a session it must equal the session's token (server-side, unknown to
   other sites); with a bearer token it must be present - another site can only send a custom
   header through a CORS preflight, which this service never grants.

A refusal is a 403 problem document whose detail says which check failed, and a log line.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

import structlog
from fastapi import HTTPException, Request

log = structlog.get_logger(__name__)

HEADER = "x-csrf-token"
FORM_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


class CsrfRefused(HTTPException):
    """403 whose reason is shown (the other 403s say nothing): the caller's own browser or
    client sent it, and the fix is on their side."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, reason)


def mutating(request: Request) -> bool:
    return request.method not in SAFE_METHODS


def foreign_sender(request: Request, public_origin: str) -> str | None:
    """Why the browser says another site sent this request, or None."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
        return f"cross-site request (Sec-Fetch-Site: {fetch_site})"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if public_origin:
        if origin.rstrip("/") != public_origin.rstrip("/"):
            return f"cross-origin request (Origin: {origin})"
        return None
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        return f"cross-origin request (Origin: {origin})"
    return None


def refuse(request: Request, reason: str) -> CsrfRefused:
    log.warning(
        "csrf refused",
        reason=reason,
        method=request.method,
        path=request.url.path,
        origin=request.headers.get("origin"),
    )
    return CsrfRefused(reason)


def check(request: Request, public_origin: str, expected: str | None, form_token: str = "") -> None:
    """Raise CsrfRefused unless this state-changing request is the service's own.

    ``expected``: the session's CSRF token, or None for a bearer credential."""
    foreign = foreign_sender(request, public_origin)
    if foreign is not None:
        raise refuse(request, foreign)
    presented = request.headers.get(HEADER, "") or form_token
    if not presented:
        raise refuse(request, "no CSRF proof: state-changing requests carry X-CSRF-Token")
    if expected is not None and not hmac.compare_digest(presented.encode(), expected.encode()):
        raise refuse(request, "the CSRF token is not this session's")
