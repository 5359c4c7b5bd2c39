"""Which headers a path gets (web/security_headers.py): the cases a prefix or a
query could get wrong."""

from __future__ import annotations

import pytest

from hubgate.web.security_headers import headers_for


def referrer(path: str, query: bytes = b"") -> str | None:
    found = dict(headers_for(path, query)).get(b"referrer-policy")
    return found.decode() if found is not None else None


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/setup/k3y", b""),
        ("/setup/k3y/connections/1", b""),
        ("/sso/join/k3y", b""),
        ("/sso/oidc/1/callback", b"code=c&state=s"),
        ("/verify-email", b"token=t"),
        ("/reset-password", b"token=t"),
        ("/login", b"next=%2Fverify-email%3Ftoken%3Dt"),
        ("/login", b"next=/reset-password?token=t"),
        ("/login", b"a=1&next=%2Fsetup%2Fk3y"),
        ("/login", b"next=%2fsso%2fjoin%2fk3y"),
    ],
)  # fmt: skip
def test_urls_with_a_secret_send_no_referrer(path: str, query: bytes) -> None:
    assert referrer(path, query) == "no-referrer"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/", b""),
        ("/setup", b""),  # no key: nothing secret
        ("/setupx/k3y", b""),
        ("/acme/sso", b""),
        ("/login", b"next=/acme"),
        ("/login", b"xnext=/setup/k3y"),
        ("/login", b"next=/acme&back=/setup/k3y"),
        ("/login", b"next=x/setup/k3y"),
        ("/api/v1/docs/assets/swagger-ui.css", b""),
    ],
)  # fmt: skip
def test_other_urls_send_the_origin_only_across_sites(path: str, query: bytes) -> None:
    assert referrer(path, query) == "strict-origin-when-cross-origin"


def test_forward_auth_gets_nosniff_alone() -> None:
    assert headers_for("/auth/check", b"") == ((b"x-content-type-options", b"nosniff"),)
    assert len(headers_for("/auth/checks", b"")) == 3


def test_only_the_api_docs_page_takes_data_images() -> None:
    def policy(path: str) -> bytes:
        return dict(headers_for(path, b""))[b"content-security-policy"]

    assert b"img-src 'self' data:" in policy("/api/v1/docs")
    for path in ("/api/v1/docs/", "/api/v1/docs/assets/swagger-ui.css", "/", "/api/v1/me"):
        assert b"data:" not in policy(path), path
