"""The dashboard's cookies: HttpOnly, SameSite=Strict, and Secure unless on plain localhost.

Behind a TLS-terminating ingress uvicorn sees http, so ``Secure`` cannot follow the request's
scheme: it is always set, and only ``LAVA_CONTROL__PLAIN_LOCALHOST`` (a loopback host, checked
by the settings) drops it for local runs over http. Secure cookies get the ``__Host-`` prefix:
the browser then refuses them unless Secure, path ``/`` and no ``Domain`` - a sibling
subdomain cannot plant one.
"""

from __future__ import annotations

from fastapi import Request, Response

from shared.settings import ControlSettings

SESSION = "lava_session"
LOGIN = "lava_login"  # the sign-in form's CSRF token (double submit)


class CookiePolicy:
    def __init__(self, settings: ControlSettings) -> None:
        self.secure = not settings.control.plain_localhost

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def read(self, request: Request, base: str) -> str:
        return request.cookies.get(self.name(base), "")

    def set(self, response: Response, base: str, value: str, max_age: float) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=int(max_age),
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def clear(self, response: Response, base: str) -> None:
        response.delete_cookie(
            self.name(base), path="/", httponly=True, samesite="strict", secure=self.secure
        )
