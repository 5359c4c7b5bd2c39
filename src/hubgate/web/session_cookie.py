"""Setting and clearing the session cookie: HttpOnly, SameSite=Lax, Secure on https."""

from __future__ import annotations

from fastapi import Response

from hubgate.accounts import sessions
from hubgate.runtime import Runtime

__all__ = ["clear_session_cookie", "set_session_cookie"]


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
