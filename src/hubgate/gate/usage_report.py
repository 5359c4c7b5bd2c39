"""What the token pages and the API show of ``token_usage``: calls today, in the
last 7 and 30 days (UTC days, today included), per deployment, and the last use.

The figures are what the gate's flushes wrote (:mod:`hubgate.gate.usage`), so
they trail the calls by up to ``HUBGATE_USAGE_FLUSH_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session

from hubgate.db.models import Org, Resource, Token, TokenUsage

__all__ = ["DeploymentUsage", "TokenUsageReport", "usage_of"]

WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class DeploymentUsage:
    org: str
    deployment: str
    today: int
    last_7_days: int
    last_30_days: int


@dataclass(frozen=True, slots=True)
class TokenUsageReport:
    token_id: int
    last_used_at: datetime | None
    deployments: tuple[DeploymentUsage, ...] = ()

    @property
    def today(self) -> int:
        return sum(d.today for d in self.deployments)

    @property
    def last_7_days(self) -> int:
        return sum(d.last_7_days for d in self.deployments)

    @property
    def last_30_days(self) -> int:
        return sum(d.last_30_days for d in self.deployments)


def usage_of(db: Session, tokens: Sequence[Token], today: date) -> dict[int, TokenUsageReport]:
    """Each of ``tokens``' usage in the 30 days up to ``today``, by token id; the
    busiest deployment first."""
    by_token: dict[int, list[DeploymentUsage]] = {t.id: [] for t in tokens}
    if by_token:
        for token_id, org, name, day, week, month in db.execute(
            _per_deployment(list(by_token), today)
        ):
            by_token[token_id].append(DeploymentUsage(org, name, day, week, month))
    return {t.id: TokenUsageReport(t.id, t.last_used_at, tuple(by_token[t.id])) for t in tokens}


def _per_deployment(token_ids: list[int], today: date) -> Select[int, str, str, int, int, int]:
    """One row per (token, deployment) called in the window, with its three sums."""
    since_30 = today - timedelta(days=WINDOW_DAYS - 1)
    last_30 = func.sum(TokenUsage.calls)
    return (
        select(
            TokenUsage.token_id,
            Org.name,
            Resource.name,
            _calls_since(today),
            _calls_since(today - timedelta(days=6)),
            last_30,
        )
        .join(Resource, Resource.id == TokenUsage.resource_id)
        .join(Org, Org.id == Resource.org_id)
        .where(TokenUsage.token_id.in_(token_ids), TokenUsage.day >= since_30)
        .group_by(TokenUsage.token_id, Resource.id, Org.name, Resource.name)
        .order_by(TokenUsage.token_id, last_30.desc(), Org.name, Resource.name)
    )


def _calls_since(day: date) -> ColumnElement[int]:
    """Calls on ``day`` and later, summed over the group (0 when none)."""
    return func.coalesce(func.sum(case((TokenUsage.day >= day, TokenUsage.calls), else_=0)), 0)
