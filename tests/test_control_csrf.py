"""The CSRF check's table of cases, without a server: who a browser says sent a request, and
which proof each credential needs (the attacks on the service: tests/security/)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from services.control import csrf

HOST = "lava.example.com"


def request(method: str = "POST", **headers: str) -> Request:
    sent = {"host": HOST, **{k.replace("_", "-").lower(): v for k, v in headers.items()}}
    return Request(
        {
            "type": "http",
            "method": method,
            "path": "/v1/tasks/t/stop",
            "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
        }
    )


@pytest.mark.parametrize(
    ("headers", "public_origin", "foreign"),
    [
        ({}, "", None),  # not a browser
        ({"Origin": f"https://{HOST}"}, "", None),
        ({"Origin": f"http://{HOST}"}, "", None),  # TLS ended at the ingress: Host decides
        ({"Origin": "https://evil.example"}, "", "cross-origin request"),
        ({"Origin": "null"}, "", "cross-origin request"),
        ({"Origin": f"https://{HOST}.evil.example"}, "", "cross-origin request"),
        ({"Sec_Fetch_Site": "same-origin", "Origin": f"https://{HOST}"}, "", None),
        ({"Sec_Fetch_Site": "none"}, "", None),  # typed into the address bar
        ({"Sec_Fetch_Site": "same-site"}, "", "cross-site request"),  # a sibling subdomain
        ({"Sec_Fetch_Site": "cross-site"}, "", "cross-site request"),
        ({"Origin": "https://lava.example.org"}, "https://lava.example.org", None),
        ({"Origin": f"https://{HOST}"}, "https://lava.example.org", "cross-origin request"),
    ],
)
def test_who_the_browser_says_sent_it(
    headers: dict[str, str], public_origin: str, foreign: str | None
) -> None:
    found = csrf.foreign_sender(request(**headers), public_origin)
    if foreign is None:
        assert found is None
    else:
        assert found is not None and found.startswith(foreign)


def test_a_session_needs_its_own_token_and_a_bearer_any_proof() -> None:
    csrf.check(request(X_CSRF_Token="s3cret"), "", expected="s3cret")
    csrf.check(request(), "", expected="s3cret", form_token="s3cret")  # the page's own form
    csrf.check(request(X_CSRF_Token="1"), "", expected=None)  # bearer: a custom header
    for sent, expected, reason in [
        (request(), None, "no CSRF proof"),
        (request(X_CSRF_Token="guess"), "s3cret", "not this session's"),
        (request(X_CSRF_Token="s3cret", Origin="https://evil.example"), "s3cret", "cross-origin"),
    ]:
        with pytest.raises(csrf.CsrfRefused, match=reason) as refused:
            csrf.check(sent, "", expected=expected)
        assert refused.value.status_code == 403
    assert not csrf.mutating(request("GET")) and csrf.mutating(request("DELETE"))
