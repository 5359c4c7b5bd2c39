"""What a browser started: who it was signed in as, and whether it came through
the org's join link, kept in the shared store from ``/sso/{org}/start`` to the
end of the sign-in (the IdP's cross-site POST carries no SameSite=Lax cookie)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hubgate import store
from hubgate.sso.identity import Browser

__all__ = ["Browser", "recall", "remember"]


_STARTED = "sso_started"
_STARTED_TTL = timedelta(minutes=10)


def remember(
    db: Session,
    browser_key: str,
    org_id: int,
    *,
    user_id: int | None,
    session_id: int | None,
    joining: bool,
) -> None:
    """At the start of a sign-in: what :func:`recall` hands back at its end."""
    payload = {
        "user_id": user_id,
        "session_id": session_id,
        "join_org_id": org_id if joining else None,
    }
    store.consume(db, _STARTED, f"{browser_key}:{org_id}")
    store.put(db, _STARTED, f"{browser_key}:{org_id}", payload, _STARTED_TTL)


def recall(
    db: Session,
    browser_key: str,
    org_id: int,
    now: datetime,
    *,
    client_address: str | None,
    user_agent: str | None,
) -> Browser:
    found = store.consume(db, _STARTED, f"{browser_key}:{org_id}", now) if browser_key else None
    found = found or {}
    return Browser(
        user_id=found.get("user_id"), session_id=found.get("session_id"),
        join_org_id=found.get("join_org_id"), client_address=client_address,
        user_agent=user_agent,
    )  # fmt: skip
