"""SCIM Groups (RFC 7643 §4.2): the org's IdP groups, pushed.

A Group's members are the org's SCIM Users (another org's ids are refused). A
Group linked to teams (:func:`link_teams`, by org admins) makes them SCIM-managed:
their membership changes only through SCIM, each member holding a place at the
highest role any of their linked groups grants, and losing it when no linked
group grants one any more. A Group's display name is also a ``groups`` value for
the org's role mappings, so a member's role follows the groups they are in.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal, TeamRole
from hubgate.audit import Actor
from hubgate.db.models import (
    Org,
    RoleMapping,
    ScimGroup,
    ScimGroupMember,
    ScimGroupTeam,
    ScimUser,
    Team,
)
from hubgate.errors import BadRequest
from hubgate.principals import require
from hubgate.provisioning.group_roles import recompute
from hubgate.runtime import Runtime
from hubgate.scim import documents
from hubgate.scim.discovery import MAX_MEMBERS_PER_REQUEST
from hubgate.scim.documents import GroupDoc, GroupRecord, Ref
from hubgate.scim.errors import (
    InvalidSyntax,
    InvalidValue,
    ScimNotFound,
    TooMany,
    Uniqueness,
)
from hubgate.scim.patch import patch_group
from hubgate.sso import mappings

__all__ = [
    "MAX_MEMBERS_PER_REQUEST",
    "create",
    "delete_group",
    "get",
    "link_teams",
    "members_of",
    "patch",
    "read",
    "record",
    "replace",
]


def get(db: Session, org: Org, scim_id: str) -> ScimGroup:
    row = db.get(ScimGroup, scim_id[:36]) if scim_id else None
    if row is None or row.org_id != org.id:
        raise ScimNotFound(f"No Group {scim_id[:36]!r}.")
    return row


def read(db: Session, org: Org, scim_id: str) -> GroupRecord:
    """The org's Group ``scim_id`` with its members; :class:`ScimNotFound` if none."""
    row = get(db, org, scim_id)
    return record(row, members_of(db, row))


def record(row: ScimGroup, members: list[Ref]) -> GroupRecord:
    """The stored Group as :mod:`hubgate.scim.documents` renders it."""
    return GroupRecord(
        id=row.id, display_name=row.display_name, external_id=row.external_id,
        members=members, created=row.created_at, last_modified=row.updated_at,
        version=row.version,
    )  # fmt: skip


def members_of(db: Session, row: ScimGroup) -> list[Ref]:
    statement = (
        select(ScimUser.id, ScimUser.display_name)
        .join(ScimGroupMember, ScimGroupMember.scim_user_id == ScimUser.id)
        .where(ScimGroupMember.group_id == row.id)
        .order_by(ScimUser.id)
    )
    return [Ref(uid, name) for uid, name in db.execute(statement)]


def _name(doc: GroupDoc) -> tuple[str, str]:
    name = str(doc.display_name or "").strip()
    if not name or len(name) > 256 or not name.isprintable():
        raise InvalidValue("displayName must be 1 to 256 printable characters.")
    return name, name.lower()


def _check_unique(db: Session, org: Org, key: str, but: str | None = None) -> None:
    statement = select(ScimGroup.id).where(
        ScimGroup.org_id == org.id, ScimGroup.display_name_key == key
    )
    if but is not None:
        statement = statement.where(ScimGroup.id != but)
    if db.scalar(statement.limit(1)) is not None:
        raise Uniqueness("A Group by that displayName exists in this organization.")


def _member_ids(db: Session, org: Org, doc: GroupDoc) -> set[str]:
    """The members asked for, all of them the org's own Users."""
    wanted = {str(m.value) for m in (doc.members or []) if m.value}
    if len(wanted) > MAX_MEMBERS_PER_REQUEST:
        raise TooMany(f"At most {MAX_MEMBERS_PER_REQUEST} members per request.")
    if not wanted:
        return set()
    known = set(
        db.scalars(select(ScimUser.id).where(ScimUser.org_id == org.id, ScimUser.id.in_(wanted)))
    )
    if known != wanted:
        raise InvalidValue("Some members are not Users of this organization.")
    return known


def create(db: Session, rt: Runtime, actor: Actor, org: Org, payload: object) -> GroupRecord:
    doc = documents.parse_group(payload)
    name, key = _name(doc)
    _check_unique(db, org, key)
    members = _member_ids(db, org, doc)
    row = ScimGroup(
        id=str(uuid.uuid4()), org_id=org.id, display_name=name, display_name_key=key,
        external_id=str(doc.external_id)[:256] if doc.external_id else None,
        created_at=rt.now(), updated_at=rt.now(),
    )  # fmt: skip
    db.add(row)
    db.flush()
    _set_members(db, rt, actor, org, row, members)
    audit.record(
        db, actor, "scim.group_created", org_id=org.id, target=name,
        data={"scim_id": row.id, "members": len(members)},
    )  # fmt: skip
    return record(row, members_of(db, row))


def replace(
    db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str, payload: object,
    if_match: str | None = None,
) -> GroupRecord:  # fmt: skip
    row = get(db, org, scim_id)
    documents.check_if_match(row.version, if_match)
    _apply(db, rt, actor, org, row, documents.parse_group(payload, replacing=True))
    return record(row, members_of(db, row))


def patch(
    db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str, payload: object,
    if_match: str | None = None, base: str = "",
) -> GroupRecord:  # fmt: skip
    """RFC 7644 §3.5.2 on the stored Group (members add/remove in bulk included),
    then stored like a replacement, in one transaction."""
    if not isinstance(payload, dict):
        raise InvalidSyntax("The body must be a JSON object.")
    row = get(db, org, scim_id)
    documents.check_if_match(row.version, if_match)
    model = documents.group_model(record(row, members_of(db, row)), base)
    patch_group(model, payload)
    _apply(db, rt, actor, org, row, model)
    return record(row, members_of(db, row))


def _apply(db: Session, rt: Runtime, actor: Actor, org: Org, row: ScimGroup, doc: GroupDoc) -> None:
    name, key = _name(doc)
    _check_unique(db, org, key, but=row.id)
    renamed = row.display_name != name
    row.display_name, row.display_name_key = name, key
    row.external_id = str(doc.external_id)[:256] if doc.external_id else None
    row.updated_at, row.version = rt.now(), row.version + 1
    _set_members(db, rt, actor, org, row, _member_ids(db, org, doc), renamed=renamed)
    audit.record(
        db, actor, "scim.group_updated", org_id=org.id, target=name, data={"scim_id": row.id}
    )
    db.flush()


def _set_members(
    db: Session, rt: Runtime, actor: Actor, org: Org, row: ScimGroup, wanted: set[str],
    *, renamed: bool = False,
) -> None:  # fmt: skip
    current = set(
        db.scalars(select(ScimGroupMember.scim_user_id).where(ScimGroupMember.group_id == row.id))
    )
    added, removed = wanted - current, current - wanted
    if removed:
        db.execute(
            delete(ScimGroupMember).where(
                ScimGroupMember.group_id == row.id, ScimGroupMember.scim_user_id.in_(removed)
            )
        )
    if added:
        db.execute(
            insert(ScimGroupMember), [{"group_id": row.id, "scim_user_id": u} for u in added]
        )
    changed = (added | removed) if not renamed else (wanted | removed)
    if changed and _grants_anything(db, org, row):
        recompute(db, actor, org, changed)


def _grants_anything(db: Session, org: Org, row: ScimGroup) -> bool:
    """Whether membership of this group can change anyone's role or teams (a
    10,000-member push of a plain group then costs no per-member work)."""
    linked = select(ScimGroupTeam.team_id).where(ScimGroupTeam.group_id == row.id)
    mapped = select(RoleMapping.id).where(
        RoleMapping.org_id == org.id, RoleMapping.attribute == mappings.GROUPS
    )
    return bool(db.scalar(select(exists(linked) | exists(mapped))))


def delete_group(db: Session, rt: Runtime, actor: Actor, org: Org, scim_id: str) -> None:
    row = get(db, org, scim_id)
    members = set(
        db.scalars(select(ScimGroupMember.scim_user_id).where(ScimGroupMember.group_id == row.id))
    )
    grants = _grants_anything(db, org, row)
    name = row.display_name
    db.delete(row)
    db.flush()
    if grants:
        recompute(db, actor, org, members)
    audit.record(db, actor, "scim.group_deleted", org_id=org.id, target=name)


def link_teams(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    scim_id: str,
    links: list[tuple[str, TeamRole]],
) -> None:
    """Link the Group to teams (name, team role), replacing its links; existing
    members are placed (backfilled) at once, and the teams become SCIM-managed."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = get(db, org, scim_id)
    names = {t.name: t.id for t in db.scalars(select(Team).where(Team.org_id == org.id))}
    if len(links) > 50 or any(name not in names for name, _ in links):
        raise BadRequest("Name up to 50 of this organization's teams.", code="invalid_team")
    before = set(db.scalars(select(ScimGroupTeam.team_id).where(ScimGroupTeam.group_id == row.id)))
    db.execute(delete(ScimGroupTeam).where(ScimGroupTeam.group_id == row.id))
    db.add_all(
        ScimGroupTeam(group_id=row.id, team_id=names[n], team_role=r.label) for n, r in links
    )
    db.flush()
    members = set(
        db.scalars(select(ScimGroupMember.scim_user_id).where(ScimGroupMember.group_id == row.id))
    )
    recompute(db, actor, org, members)
    audit.record(
        db, actor, "scim.group_linked", org_id=org.id, target=row.display_name,
        data={"teams": [[n, r.label] for n, r in links], "before": sorted(before)},
    )  # fmt: skip
