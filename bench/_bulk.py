"""Bulk seeding for benchmarks that need a large hub: many accounts with their
memberships and personal tokens, added to a world :func:`_server.seed` made.

The services create an account at a time (a password hash, a flush, an audit
event each), which takes minutes for 100,000 accounts. Here each table gets one
Core ``insert`` executed with many parameter sets, in batches, in one
transaction: seconds. The rows are the ones the services write (a verified
primary email, an org membership, a team role for some, a personal token stored
as its SHA-256 hash); what the services add around them (audit events, mail) is
left out, since benchmarks only read these rows.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from hubgate.access import OrgRole, TeamRole
from hubgate.accounts.tokens import PREFIX
from hubgate.db.engine import create_database
from hubgate.db.models import Email, Membership, Org, Team, TeamMembership, Token, User
from hubgate.store import digest

__all__ = ["BulkToken", "add_members"]

_BATCH = 5_000
_ROLES = (OrgRole.READ, OrgRole.CONTRIBUTOR, OrgRole.WRITE)
_TEAM_SHARE = 0.33


@dataclass(frozen=True, slots=True)
class BulkToken:
    """A personal token's secret and the org its user is a member of."""

    secret: str
    org: str


def add_members(database_url: str, users: int, tokens: int, rng_seed: int = 7) -> list[BulkToken]:
    """Add ``users`` accounts (no password: they act through tokens), each a member
    of one existing org in turn and, a third of them, of one of its teams; the
    first ``tokens`` accounts get a personal ``read`` token each."""
    database = create_database(database_url)
    try:
        with database.engine.begin() as connection:
            orgs = connection.execute(select(Org.id, Org.name).order_by(Org.id)).all()
            homes = [orgs[index % len(orgs)] for index in range(users)]
            user_ids = _users(connection, users)
            _insert(connection, Email, [_email(user_id) for user_id in user_ids])
            rng = random.Random(rng_seed)
            memberships = [
                {"org_id": home.id, "user_id": user_id, "role": rng.choice(_ROLES).label}
                for user_id, home in zip(user_ids, homes, strict=True)
            ]
            _insert(connection, Membership, memberships)
            _insert(connection, TeamMembership, _team_roles(connection, memberships, rng))
            return _tokens(connection, user_ids[:tokens], [home.name for home in homes])
    finally:
        database.engine.dispose()


def _insert(connection: Connection, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        connection.execute(insert(model), rows[start : start + _BATCH])


def _users(connection: Connection, count: int) -> list[int]:
    """Insert the accounts; their ids, in order (RETURNING, sorted by parameter set)."""
    statement = insert(User).returning(User.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, count, _BATCH):
        rows = [{"display_name": f"Bulk {n}"} for n in range(start, min(count, start + _BATCH))]
        ids += connection.scalars(statement, rows).all()
    return ids


def _email(user_id: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "address": f"bulk{user_id}@bulk.example",
        "domain": "bulk.example",
        "is_primary": True,
        "verified_at": datetime.now(UTC),
    }


def _team_roles(
    connection: Connection, memberships: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    teams: dict[int, list[int]] = {}
    for team_id, org_id in connection.execute(select(Team.id, Team.org_id)):
        teams.setdefault(org_id, []).append(team_id)
    return [
        {
            "team_id": rng.choice(teams[member["org_id"]]),
            "user_id": member["user_id"],
            "role": rng.choice(tuple(TeamRole)).label,
        }
        for member in memberships
        if rng.random() < _TEAM_SHARE
    ]


def _tokens(connection: Connection, user_ids: list[int], orgs: list[str]) -> list[BulkToken]:
    secrets_ = [PREFIX + secrets.token_urlsafe(32) for _ in user_ids]
    rows = [
        {
            "kind": "personal",
            "name": "bulk",
            "secret_hash": digest(secret),
            "hint": secret[:8],
            "user_id": user_id,
            "scopes": "read",
        }
        for secret, user_id in zip(secrets_, user_ids, strict=True)
    ]
    _insert(connection, Token, rows)
    return [BulkToken(secret, org) for secret, org in zip(secrets_, orgs, strict=False)]
