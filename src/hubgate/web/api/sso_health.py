"""``GET /api/v1/orgs/{org}/sso/health``: the org's sign-in health (org admins),
the figures the SSO settings page draws (hubgate.sso.health)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel

from hubgate.sso import health, policy
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, org_scope

__all__ = ["SsoHealthPublic", "router"]

router = api_router("/orgs/{org}/sso", ["sso policy"])


class HealthCountPublic(BaseModel):
    """Events of one outcome, connection and reason in the bucket that starts at ``start``."""

    start: datetime
    connection_id: int | None
    outcome: Literal["success", "refused"]
    reason: str | None
    count: int


class ConnectionHealthPublic(BaseModel):
    id: int
    name: str
    kind: str
    state: str
    last_sign_in_at: datetime | None


class ScimHealthPublic(BaseModel):
    id: int
    name: str
    revoked: bool
    last_used_at: datetime | None


class SsoHealthPublic(BaseModel):
    """Sign-ins and refusals per bucket from ``since`` (the oldest bucket's start)
    to ``until`` (the end of the current one), UTC; buckets without events are
    listed in ``buckets`` and absent from ``counts``."""

    period: Literal["hour", "day"]
    since: datetime
    until: datetime
    buckets: list[datetime]
    counts: list[HealthCountPublic]
    connections: list[ConnectionHealthPublic]
    scim_tokens: list[ScimHealthPublic]


@router.get("/health", response_model=SsoHealthPublic)
def get_health(
    org: str,
    rt: Rt,
    credential: CurrentCredential,
    period: Annotated[Literal["hour", "day"], Query()] = "day",
) -> SsoHealthPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        shown = health.health(db, found.id, period, rt.now())
    return _public(shown)


def _public(shown: health.Health) -> SsoHealthPublic:
    span = shown.window
    return SsoHealthPublic(
        period=span.period, since=span.since, until=span.until, buckets=list(span.starts),
        counts=[HealthCountPublic.model_validate(c, from_attributes=True) for c in shown.counts],
        connections=[
            ConnectionHealthPublic.model_validate(c, from_attributes=True)
            for c in shown.connections
        ],
        scim_tokens=[
            ScimHealthPublic.model_validate(t, from_attributes=True) for t in shown.scim_tokens
        ],
    )  # fmt: skip
