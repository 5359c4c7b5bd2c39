"""GitHub's answer to a spent state, verified over the network with no
transaction open: the code exchanged for an access token (PKCE verifier sent),
then ``/user`` and ``/user/emails``, each fetch bounded and SSRF-checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubgate import bounded_json
from hubgate.errors import BadRequest
from hubgate.runtime import Runtime
from hubgate.sso import github
from hubgate.sso.fetch import fetch, post_form
from hubgate.sso.identity import Identity
from hubgate.sso.platform.providers import GithubConfig

__all__ = ["verify"]

_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def verify(rt: Runtime, config: GithubConfig, params: Mapping[str, str], verifier: str) -> Identity:
    code = github.checked_response(params)
    form = github.token_form(
        config.client_id, config.client_secret, code, config.redirect_uri, verifier
    )
    allow = rt.settings.allow_private_idp_urls
    try:
        body = post_form(
            config.endpoints.access_token, form, allow_private=allow, accept="application/json"
        )
    except BadRequest as exc:
        raise github.TokenExchangeFailed() from exc
    token = github.access_token(body)
    user = _api(rt, config, token, "/user")
    emails = _api(rt, config, token, "/user/emails")
    return github.identity_from(config.provider_id, config.endpoints, user, emails)


def _api(rt: Runtime, config: GithubConfig, token: str, path: str) -> Any:
    headers = {**_API_HEADERS, "Authorization": f"Bearer {token}"}
    try:
        body = fetch(
            config.endpoints.api + path, allow_private=rt.settings.allow_private_idp_urls,
            headers=headers,
        )  # fmt: skip
        return bounded_json.loads(body)
    except (BadRequest, ValueError) as exc:
        raise github.ApiAnswerInvalid(f"GitHub's {path} did not answer usable JSON.") from exc
