"""What a browser started: who it was signed in as, and whether it came through
the org's join link, kept in the shared store from ``/sso/{org}/start`` to the
end of the sign-in (the IdP's cross-site POST carries no SameSite=Lax cookie).

An OIDC sign-in keeps it in its state, which the browser's callback spends
anyway (:mod:`hubgate.sso.flows.oidc`); a SAML one in an entry of its own per
browser and org, which an IdP-initiated response finds too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hubgate import store
from hubgate.sso.identity import Browser

__all__ = ["Browser", "Started", "recall", "remember"]


@dataclass(frozen=True, slots=True)
class Started:
    """What the browser was when it started a sign-in into an org."""

    user_id: int | None
    session_id: int | None
    join_org_id: int | None

    def payload(self) -> dict[str, int | None]:
        return {
            "user_id": self.user_id, "session_id": self.session_id,
            "join_org_id": self.join_org_id,
        }  # fmt: skip

    def browser(self, *, client_address: str | None, user_agent: str | None) -> Browser:
        return Browser(
            user_id=self.user_id, session_id=self.session_id, join_org_id=self.join_org_id,
            client_address=client_address, user_agent=user_agent,
        )  # fmt: skip

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Started:
        return cls(payload.get("user_id"), payload.get("session_id"), payload.get("join_org_id"))


_STARTED = "sso_started"
_STARTED_TTL = timedelta(minutes=10)


def remember(db: Session, browser_key: str, org_id: int, started: Started) -> None:
    """At the start of a SAML sign-in: what :func:`recall` hands back at its end."""
    store.consume(db, _STARTED, f"{browser_key}:{org_id}")
    store.put(db, _STARTED, f"{browser_key}:{org_id}", started.payload(), _STARTED_TTL)


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
    return Started.of(found or {}).browser(client_address=client_address, user_agent=user_agent)
