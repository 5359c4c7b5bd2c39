"""Team tokens: created and revoked by the team's admins (or org admins)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, Principal, TeamTarget
from hubgate.accounts.tokens import TEAM_SCOPES, NewToken, issue, parse_scopes, revoke
from hubgate.audit import Actor
from hubgate.db.models import Org, Team, Token
from hubgate.errors import NotFound
from hubgate.principals import require

__all__ = ["create", "revoke_team_token", "team_token"]


def create(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    team: Team,
    name: str,
    scopes: list[str],
    days: int | None,
    now: datetime,
) -> NewToken:
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    new = issue(
        db, user_id=None, name=name.strip() or "token",
        scopes=parse_scopes(scopes, TEAM_SCOPES),
        expires_at=now + timedelta(days=days) if days else None, org_id=org.id, team_id=team.id,
    )  # fmt: skip
    audit.record(
        db, actor, "token.created", org_id=org.id, target=f"token:{new.row.id}",
        data={"kind": "team", "team": team.name, "scopes": new.row.scopes},
    )  # fmt: skip
    return new


def revoke_team_token(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    team: Team,
    token_id: int,
    now: datetime,
) -> None:
    row = team_token(db, principal, org, team, token_id)
    if revoke(db, row, now):
        audit.record(
            db, actor, "token.revoked", org_id=org.id, target=f"token:{row.id}",
            data={"kind": "team", "team": team.name},
        )  # fmt: skip


def team_token(db: Session, principal: Principal, org: Org, team: Team, token_id: int) -> Token:
    """A token of ``team``, for whoever may manage the team (as its token list is)."""
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    row = db.get(Token, token_id)
    if row is None or row.team_id != team.id:
        raise NotFound("No such token.")
    return row
