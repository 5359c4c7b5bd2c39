"""Setting and clearing the session cookie (HttpOnly, SameSite=Lax, Secure on
https), and the SSO browser cookie that binds a protocol exchange to its browser."""

from __future__ import annotations

from fastapi import Response

from hubgate.accounts import sessions
from hubgate.runtime import Runtime

__all__ = ["BROWSER_COOKIE", "clear_session_cookie", "set_browser_cookie", "set_session_cookie"]

BROWSER_COOKIE = "hubgate_sso_browser"


def set_session_cookie(response: Response, rt: Runtime, value: str) -> None:
    response.set_cookie(
        sessions.COOKIE,
        value,
        max_age=rt.settings.session_absolute_seconds,
        httponly=True,
        samesite="lax",
        secure=rt.settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, rt: Runtime) -> None:
    response.delete_cookie(
        sessions.COOKIE, httponly=True, samesite="lax", secure=rt.settings.secure_cookies, path="/"
    )


def set_browser_cookie(response: Response, rt: Runtime, value: str) -> None:
    """The key a pending SSO exchange (a sign-in, a logout) is bound to. The IdP
    answers cross-site, by POST too: on https the cookie must be SameSite=None."""
    secure = rt.settings.secure_cookies
    response.set_cookie(
        BROWSER_COOKIE, value, max_age=600, httponly=True, secure=secure,
        samesite="none" if secure else "lax", path="/sso/",
    )  # fmt: skip
