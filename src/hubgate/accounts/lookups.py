"""Statement pieces shared by the hot lookups (credentials on every request)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect, select
from sqlalchemy.orm import QueryableAttribute

from hubgate.db.models import Email

__all__ = ["primary_email_of"]


def primary_email_of(user_id: QueryableAttribute[Any]) -> ScalarSelect[str]:
    """A correlated subquery: the user's primary email (else their first)."""
    return (
        select(Email.address)
        .where(Email.user_id == user_id)
        .order_by(Email.is_primary.desc(), Email.id)
        .limit(1)
        .scalar_subquery()
    )
