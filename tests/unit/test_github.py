"""GitHub's OAuth app flow as pure functions (docs.github.com "Authorizing OAuth
apps", REST "Get the authenticated user" and "List email addresses")."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hubgate.errors import BadRequest
from hubgate.sso import github
from hubgate.sso.github import Endpoints

GHE = Endpoints.of("https://ghe.example.com")


def test_endpoints_of_github_com_and_of_an_enterprise_server() -> None:
    com = Endpoints.of("https://github.com/")
    assert com.authorize == "https://github.com/login/oauth/authorize"
    assert com.access_token == "https://github.com/login/oauth/access_token"
    assert com.api == "https://api.github.com"
    assert GHE.api == "https://ghe.example.com/api/v3"


@pytest.mark.parametrize(
    "url",
    ["ftp://ghe.example.com", "https://", "https://ghe.example.com/path",
     "https://ghe.example.com?x=1", "https://user@ghe.example.com", "https://[::1"],
)  # fmt: skip
def test_a_base_url_is_a_bare_origin(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        github.checked_base_url(url)
    assert refused.value.code == "setting_invalid"


def test_the_authorization_url_asks_for_the_user_and_emails_with_pkce() -> None:
    url = github.authorization_url(GHE, "cid", "https://hub/cb", "st", "ch")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(GHE.authorize + "?")
    assert query["scope"] == "read:user user:email" and query["state"] == "st"
    assert query["code_challenge"] == "ch" and query["code_challenge_method"] == "S256"


@pytest.mark.parametrize(
    "body", [b'{"error": "bad_verification_code"}', b"access_token=x", b"[]",
             b'{"access_token": ""}', b'{"access_token": 7}'],
)  # fmt: skip
def test_no_usable_access_token_is_refused(body: bytes) -> None:
    with pytest.raises(github.TokenExchangeFailed):
        github.access_token(body)


def test_the_error_in_the_redirect_and_a_missing_code_are_refused() -> None:
    with pytest.raises(github.AuthorizationError):
        github.checked_response({"error": "access_denied", "state": "s"})
    with pytest.raises(github.TokenExchangeFailed):
        github.checked_response({"state": "s"})
    assert github.checked_response({"code": "c"}) == "c"


def _identity(user: Any, emails: Any) -> Any:
    return github.identity_from(1, GHE, user, emails)


def test_the_subject_is_the_numeric_id_at_this_github() -> None:
    found = _identity({"id": 42, "login": "octo"}, [])
    assert found.subject == "https://ghe.example.com 42" and found.display_name == "octo"
    assert found.email is None and found.email_verified is False


def test_only_the_primary_address_counts_and_only_when_verified() -> None:
    verified = [{"email": "b@x.org", "primary": False, "verified": True},
                {"email": "a@x.org", "primary": True, "verified": True}]  # fmt: skip
    assert (_identity({"id": 1}, verified).email, _identity({"id": 1}, verified).email_verified) == (
        "a@x.org", True,
    )  # fmt: skip
    unverified = [{"email": "b@x.org", "primary": False, "verified": True},
                  {"email": "a@x.org", "primary": True, "verified": "true"}]  # fmt: skip
    found = _identity({"id": 1}, unverified)
    assert found.email == "a@x.org" and found.email_verified is False


@pytest.mark.parametrize(
    ("user", "emails"),
    [([], []), ({"id": "42"}, []), ({"id": True}, []), ({"id": 0}, []), ({"id": 1}, {})],
)
def test_unusable_api_answers_are_refused(user: Any, emails: Any) -> None:
    with pytest.raises(github.ApiAnswerInvalid):
        _identity(user, emails)
