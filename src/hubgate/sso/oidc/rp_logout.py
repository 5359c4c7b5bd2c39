"""RP-Initiated Logout 1.0 §2: the logout request a relying party sends the
browser with to the provider's ``end_session_endpoint``."""

from __future__ import annotations

from urllib.parse import urlencode

__all__ = ["end_session_url"]


def end_session_url(
    endpoint: str,
    *,
    client_id: str,
    post_logout_redirect_uri: str,
    state: str,
    id_token_hint: str | None,
) -> str:
    """The ``end_session_endpoint`` with the request in its query (§2, §3):
    ``id_token_hint`` when there is one (the provider then knows whose session
    without asking), ``client_id`` (which registered the redirect URI),
    ``post_logout_redirect_uri`` and ``state``."""
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token_hint:
        params = {"id_token_hint": id_token_hint, **params}
    params["state"] = state
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
