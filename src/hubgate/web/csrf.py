"""CSRF protection: a signed double-submit token bound to the browser and its session.

The browser holds a random ``hubgate_csrf`` cookie; forms carry
``HMAC(secret, cookie | session)`` in a hidden field, and cookie-authenticated
API calls carry it in ``X-CSRF-Token``. A cross-site page can read neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from hubgate.accounts import sessions
from hubgate.errors import Forbidden
from hubgate.runtime import Runtime

__all__ = ["COOKIE", "HEADER", "attach_cookie", "token_for", "verify"]

COOKIE = "hubgate_csrf"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _browser_key(request: Request) -> str:
    """The browser's CSRF cookie, minting one (set on the response by the page helper)."""
    key = getattr(request.state, "csrf_cookie", None) or request.cookies.get(COOKIE, "")
    if not key or len(key) > 64:
        key = secrets.token_urlsafe(24)
        request.state.csrf_cookie = key
    return str(key)


def token_for(request: Request, rt: Runtime, session_cookie: str | None = None) -> str:
    binding = (
        session_cookie if session_cookie is not None else request.cookies.get(sessions.COOKIE, "")
    )
    message = f"{_browser_key(request)}|{binding}".encode()
    return hmac.new(rt.settings.secret, b"csrf|" + message, hashlib.sha256).hexdigest()


def attach_cookie(request: Request, response: Response, rt: Runtime) -> None:
    """Set the browser's CSRF cookie if this request minted one."""
    fresh = getattr(request.state, "csrf_cookie", None)
    if fresh:
        response.set_cookie(
            COOKIE, fresh, httponly=True, samesite="lax", secure=rt.settings.secure_cookies
        )


def verify(request: Request, rt: Runtime, submitted: str | None) -> None:
    cookie = request.cookies.get(COOKIE)
    if not cookie or not submitted:
        raise _failed()
    expected = token_for(request, rt)
    if not hmac.compare_digest(expected, submitted):
        raise _failed()


def _failed() -> Forbidden:
    return Forbidden(
        "The form expired or came from another site. Reload the page and try again.",
        code="csrf_failed",
    )
