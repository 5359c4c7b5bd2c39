"""The security headers of every response, set in one place (issue 20).

- ``X-Content-Type-Options: nosniff``: a browser takes each body for the type it is
  sent as (a JSON error is never run as a script or shown as a page).
- ``Content-Security-Policy`` (:data:`POLICY`): pages, scripts, styles, images and
  fonts come from hubgate alone, with no inline script, inline style or ``data:``
  image (the pages keep theirs in ``/static``); no ``<base>`` may move relative
  URLs elsewhere; no other site may frame a page (clickjacking). The API docs page
  alone also takes ``data:`` images, the icons of Swagger UI's stylesheet
  (:data:`DOCS_POLICY`).

  ``form-action`` is left out on purpose. Chromium checks it against every
  redirect that follows a form submission, and hubgate's own same-origin forms
  redirect to an identity provider: ``POST /login`` to ``/sso/{org}/start`` and on
  to the org's IdP, ``POST /logout`` to the IdP's logout endpoint. Which IdP is
  known only after the form is sent (from the typed email, or the session), so
  ``form-action 'self'`` would stop both journeys and no page could list the
  right origins in advance. Forms are written by hubgate's templates, which
  escape every value, and ``default-src`` still holds every fetch.
- ``Referrer-Policy``: ``no-referrer`` where the URL carries a secret
  (:data:`SECRET_PATHS`), so neither hubgate's own subresources (and the logs of
  any proxy in front) nor a link out to another site (an IdP's setup guide) sees
  it; ``strict-origin-when-cross-origin`` elsewhere.

``GET /auth/check`` (forward-auth) is asked by the proxy before every request of a
model server; its answers are read by the proxy, so they get ``nosniff`` alone.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_POLICY", "POLICY", "SECRET_PATHS", "SecurityHeaders", "headers_for"]

_BASE = "base-uri 'none'; frame-ancestors 'none'"
POLICY = f"default-src 'self'; {_BASE}"
DOCS_POLICY = f"default-src 'self'; img-src 'self' data:; {_BASE}"

SECRET_PATHS = (
    "/setup/",  # the setup portal: /setup/{key}, the org's one-time link for its IT admin
    "/sso/",  # the join link /sso/join/{key}; OIDC callbacks with their code and state
    "/verify-email",  # ?token=: the email verification link
    "/reset-password",  # ?token=: the password reset link
)
"""Paths whose URL carries a secret: their responses send no ``Referer`` anywhere.
A page whose ``next`` names one of them (``/login?next=/verify-email?token=...``)
carries that secret too."""

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_FORWARD_AUTH = (_NOSNIFF,)


def _set(policy: str, referrer: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        _NOSNIFF,
        (b"content-security-policy", policy.encode()),
        (b"referrer-policy", referrer.encode()),
    )


_PLAIN = _set(POLICY, "strict-origin-when-cross-origin")
_SECRET = _set(POLICY, "no-referrer")
_DOCS = _set(DOCS_POLICY, "strict-origin-when-cross-origin")


def headers_for(path: str, query: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """The headers a response to ``path`` (with its raw query) carries."""
    if path == "/auth/check":
        return _FORWARD_AUTH
    if path.startswith(SECRET_PATHS) or _next_is_secret(query):
        return _SECRET
    return _DOCS if path == "/api/v1/docs" else _PLAIN


def _next_is_secret(query: bytes) -> bool:
    if b"next=" not in query:
        return False
    return any(
        unquote_plus(part[5:].decode("latin-1")).startswith(SECRET_PATHS)
        for part in query.split(b"&")
        if part.startswith(b"next=")
    )


class SecurityHeaders:
    """Adds :func:`headers_for` to every HTTP response, errors and files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"], scope["query_string"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
