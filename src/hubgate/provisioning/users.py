"""SCIM Users (RFC 7643 §4.1) as the org's memberships.

A SCIM User is one account's membership of the org. Its primary email must be in
one of the org's verified domains: it links an existing account holding that
email, or creates one (owned by the org in managed mode). ``active=false``
deactivates the membership at once and ends the member's org sessions;
``active=true`` restores it (roles and teams, not tokens). DELETE removes the
membership (in managed mode, the account too). Roles never come from SCIM
attributes, only from the org's group mappings (:mod:`hubgate.provisioning.groups`).
Every change is audited with the token as the actor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Principal
from hubgate.accounts import users
from hubgate.accounts.emails import accepted_email, split_email
from hubgate.audit import Actor
from hubgate.db.models import (
    Membership,
    Org,
    ScimGroup,
    ScimGroupMember,
    ScimUser,
    ScimUserEmail,
    Team,
    TeamMembership,
    Token,
    User,
    WebSession,
)
from hubgate.errors import BadRequest
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.scim import documents
from hubgate.scim.documents import Ref, UserDoc, UserRecord
from hubgate.scim.errors import InvalidValue, ScimNotFound, Uniqueness
from hubgate.scim.patch import patch_user
from hubgate.sso import domains, members, policy

__all__ = [
    "count", "create", "delete_user", "get", "groups_of", "groups_of_each", "patch", "read",
    "record", "replace",
]  # fmt: skip


def get(db: Session, org: Org, scim_id: str) -> ScimUser:
    row = db.get(ScimUser, scim_id[:36]) if scim_id else None
    if row is None or row.org_id != org.id:
        raise ScimNotFound(f"No User {scim_id[:36]!r}.")
    return row


def read(db: Session, org: Org, scim_id: str) -> UserRecord:
    """The org's User ``scim_id`` with its groups; :class:`ScimNotFound` if none."""
    row = get(db, org, scim_id)
    return record(row, groups_of(db, row))


def record(row: ScimUser, groups: list[Ref]) -> UserRecord:
    """The stored User as :mod:`hubgate.scim.documents` renders it."""
    return UserRecord(
        id=row.id, attributes=row.extra, groups=groups, created=row.created_at,
        last_modified=row.updated_at, version=row.version,
    )  # fmt: skip


def groups_of(db: Session, row: ScimUser) -> list[Ref]:
    return groups_of_each(db, [row])[row.id]


def groups_of_each(db: Session, rows: Sequence[ScimUser]) -> dict[str, list[Ref]]:
    """Each User's groups (id, displayName), by name: one query for a whole page."""
    found: dict[str, list[Ref]] = {row.id: [] for row in rows}
    if not found:
        return found
    statement = (
        select(ScimGroupMember.scim_user_id, ScimGroup.id, ScimGroup.display_name)
        .join(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id)
        .where(ScimGroupMember.scim_user_id.in_(list(found)))
        .order_by(ScimGroup.display_name, ScimGroup.id)
    )
    for user_id, group_id, name in db.execute(statement):
        found[user_id].append(Ref(group_id, name))
    return found


def _accepted(rt: Runtime, where: str, value: str) -> str:
    """``value`` as the one rule for addresses reads it (:func:`accepted_email`)."""
    try:
        return accepted_email(value, rt.settings.env)
    except BadRequest as exc:
        raise InvalidValue(f"{where}: {exc.message}") from exc


def _primary_email(db: Session, rt: Runtime, org: Org, doc: UserDoc) -> str:
    """The email that binds the account: the primary one, else the first, else the
    userName; it must be in one of the org's verified domains. Every one of the
    User's ``emails`` must be an address hubgate takes, as must the ``userName`` when
    it stands for the address (the User has no email); otherwise the userName is a
    name, whatever it looks like (Entra's user principal names may end in .local)."""
    emails = [e for e in (doc.emails or []) if e.value]
    for email in emails:
        _accepted(rt, "emails", str(email.value))
    chosen = next((e for e in emails if e.primary), emails[0] if emails else None)
    candidate = str(chosen.value) if chosen is not None else str(doc.user_name or "")
    if chosen is None and "@" not in candidate:
        raise InvalidValue("The user needs an email address (emails or userName).")
    address = _accepted(rt, "emails" if chosen is not None else "userName", candidate)
    owner = domains.verified_owner(db, split_email(address)[1])
    if owner is None or owner.org_id != org.id:
        raise InvalidValue(
            "The user's email must be in one of the organization's verified domains."
        )
    return address


def _user_name(doc: UserDoc) -> tuple[str, str]:
    name = str(doc.user_name or "").strip()
    if not name or len(name) > 256 or not name.isprintable():
        raise InvalidValue("userName must be 1 to 256 printable characters.")
    return name, name.lower()


def _taken(db: Session, org: Org, key: str, but: str | None = None) -> bool:
    statement = select(ScimUser.id).where(ScimUser.org_id == org.id, ScimUser.user_name_key == key)
    if but is not None:
        statement = statement.where(ScimUser.id != but)
    return db.scalar(statement.limit(1)) is not None


def _account(
    db: Session,
    rt: Runtime,
    actor: Actor,
    org: Org,
    settings: policy.Policy,
    address: str,
    doc: UserDoc,
) -> tuple[User, bool]:
    """The account that has verified ``address``, or a new one; and whether it is
    new. For the org's verified domain its SCIM client is the authority: an account
    holding the address unverified loses it (:func:`users.release_unverified`)."""
    existing = users.find_verified(db, address)
    if existing is not None:
        return existing, False
    users.release_unverified(db, actor, address, "scim")
    name = doc.display_name or (doc.name.formatted if doc.name else None)
    user = users.create_user(db, rt, address, password=None, display_name=name, verified=True)
    if settings.mode is policy.SsoMode.MANAGED:
        user.managed_by_org_id = org.id
    return user, True


def create(db: Session, rt: Runtime, actor: Actor, org: Org, payload: object) -> UserRecord:
    doc = documents.parse_user(payload)
    name, key = _user_name(doc)
    if _taken(db, org, key):
        raise Uniqueness("That userName is taken in this organization.")
    address = _primary_email(db, rt, org, doc)
    settings = policy.policy_of(db, org.id)
    user, new = _account(db, rt, actor, org, settings, address, doc)
    member = None
    if not new:  # a new account has neither a SCIM User nor a membership to look for
        linked = select(ScimUser.id).where(ScimUser.org_id == org.id, ScimUser.user_id == user.id)
        if db.scalar(linked):
            raise Uniqueness("A User with that email exists in this organization.")
        member = service.membership(db, org.id, user.id)
    if member is None:
        member = service.join(
            db, org.id, user.id, settings.default_role, role_source="scim",
            team_id=settings.default_team_id,
        )  # fmt: skip
    row = ScimUser(id=str(uuid.uuid4()), org_id=org.id, user_id=user.id, created_at=rt.now())
    _write(row, doc, name, key, rt.now())
    db.add(row)
    db.add_all(_emails(row, doc))
    db.flush()
    _set_active(
        db, rt, actor, org, row, member, bool(doc.active if doc.active is not None else True)
    )
    audit.record(
        db, actor, "scim.user_created", org_id=org.id, target=name,
        data={"scim_id": row.id, "email": address},
    )  # fmt: skip
    return record(row, [])


def _write(row: ScimUser, doc: UserDoc, name: str, key: str, now: datetime) -> None:
    row.user_name, row.user_name_key = name, key
    row.external_id = str(doc.external_id)[:256] if doc.external_id else None
    row.display_name = str(doc.display_name)[:256] if doc.display_name else None
    row.given_name = str(doc.name.given_name)[:128] if doc.name and doc.name.given_name else None
    row.family_name = str(doc.name.family_name)[:128] if doc.name and doc.name.family_name else None
    row.active = bool(doc.active if doc.active is not None else True)
    row.extra = documents.stored_user(doc)
    row.updated_at = now


def _emails(row: ScimUser, doc: UserDoc) -> list[ScimUserEmail]:
    return [
        ScimUserEmail(
            scim_user_id=row.id,
            value=value[:254],
            value_key=value.lower()[:254],
            type=kind[:32] or None,
            primary=primary,
        )  # fmt: skip
        for value, kind, primary in documents.emails_of(doc)
    ]


def replace(
    db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str, payload: object,
    if_match: str | None = None,
) -> UserRecord:  # fmt: skip
    row = get(db, org, scim_id)
    documents.check_if_match(row.version, if_match)
    _apply(db, rt, actor, org, row, documents.parse_user(payload, replacing=True))
    return record(row, groups_of(db, row))


def patch(
    db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str, payload: object,
    if_match: str | None = None, base: str = "",
) -> UserRecord:  # fmt: skip
    """RFC 7644 §3.5.2: the operations apply to the stored User (scim2-models), then
    the result is checked and stored like a replacement; one PATCH, one transaction."""
    row = get(db, org, scim_id)
    documents.check_if_match(row.version, if_match)
    model = documents.user_model(record(row, groups_of(db, row)), base)
    patch_user(model, payload)
    _apply(db, rt, actor, org, row, model)
    return record(row, groups_of(db, row))


def _apply(db: Session, rt: Runtime, actor: Actor, org: Org, row: ScimUser, doc: UserDoc) -> None:
    name, key = _user_name(doc)
    if _taken(db, org, key, but=row.id):
        raise Uniqueness("That userName is taken in this organization.")
    _primary_email(db, rt, org, doc)
    was_active = row.active
    _write(row, doc, name, key, rt.now())
    row.version += 1
    db.execute(delete(ScimUserEmail).where(ScimUserEmail.scim_user_id == row.id))
    db.add_all(_emails(row, doc))
    member = service.membership(db, org.id, row.user_id)
    if member is not None and was_active != row.active:
        _set_active(db, rt, actor, org, row, member, row.active)
    audit.record(
        db, actor, "scim.user_updated", org_id=org.id, target=name, data={"scim_id": row.id}
    )
    db.flush()


def _set_active(
    db: Session, rt: Runtime, actor: Actor, org: Org, row: ScimUser, member: Membership,
    active: bool,
) -> None:  # fmt: skip
    """Deactivation cuts the org at once: the membership stops counting, the org's
    SSO authentications end, and an account the org manages loses its sessions and
    personal tokens. Reactivation gives back the roles and teams, not the tokens."""
    if active:
        if member.deactivated_at is not None:
            member.deactivated_at = None
            audit.record(db, actor, "scim.user_reactivated", org_id=org.id, target=row.user_name)
        return
    if member.deactivated_at is not None:
        return
    last = service.loses_last_admin(db, member, None)
    member.deactivated_at = rt.now()
    user = db.get_one(User, row.user_id)
    members.end_org_sessions(db, actor, Principal.operator(org.id), org, user)
    if user.managed_by_org_id == org.id:
        db.execute(
            update(Token)
            .where(Token.user_id == user.id, Token.revoked_at.is_(None))
            .values(revoked_at=rt.now())
        )
    audit.record(db, actor, "scim.user_deactivated", org_id=org.id, target=row.user_name)
    if last:
        service.last_admin_deprovisioned(db, actor, org.id, row.user_name, "deactivated")


def delete_user(db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str) -> None:
    """The membership goes (in managed mode the account too); the id answers 404
    from now on and the userName can be created again. The IdP decides: even the
    org's last active admin goes (a warning in the audit log)."""
    row = get(db, org, scim_id)
    member = service.membership(db, org.id, row.user_id)
    last = member is not None and service.loses_last_admin(db, member, None)
    user = db.get_one(User, row.user_id)
    org_teams = select(Team.id).where(Team.org_id == org.id)
    db.execute(
        delete(TeamMembership).where(
            TeamMembership.user_id == user.id, TeamMembership.team_id.in_(org_teams)
        )
    )
    if member is not None:
        members.end_org_sessions(db, actor, Principal.operator(org.id), org, user)
        db.delete(member)
    name = row.user_name
    db.delete(row)
    if user.managed_by_org_id == org.id:
        db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        db.delete(user)
    audit.record(db, actor, "scim.user_deleted", org_id=org.id, target=name)
    if last:
        service.last_admin_deprovisioned(db, actor, org.id, name, "deleted")
    db.flush()


def count(db: Session, org: Org) -> int:
    return int(db.scalar(select(func.count()).where(ScimUser.org_id == org.id)) or 0)
