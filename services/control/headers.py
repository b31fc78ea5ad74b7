"""Security headers on every response: CSP without inline script, no framing, nosniff, HSTS.

The dashboard runs only its own files (``/static``): its data travels in a JSON script element
(never executed) and from the API, so ``script-src 'self'`` holds and an injected ``<script>``
would not run. ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` stop clickjacking of
the Stop and Retry buttons. HSTS is sent unless ``LAVA_CONTROL__PLAIN_LOCALHOST`` (browsers
ignore it over http anyway; behind a TLS ingress they keep it).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def security_headers(hsts_seconds: int) -> dict[str, str]:
    found = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
        # page's own form posts, which the CSRF check must refuse
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if hsts_seconds > 0:
        found["Strict-Transport-Security"] = f"max-age={hsts_seconds}; includeSubDomains"
    return found


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response (errors included), and
    ``Cache-Control: no-store`` on everything but the static files (pages and API answers
    hold operators' data)."""

    def __init__(self, app: ASGIApp, hsts_seconds: int) -> None:
        self.app = app
        self.headers = security_headers(hsts_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
