"""Listing SCIM resources (RFC 7644 §3.4.2): filter, sort and page in SQL, within
the caller's org only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, func, select
from sqlalchemy.orm import Session

from hubgate.db.models import Org, ScimGroup, ScimGroupMember, ScimUser
from hubgate.scim import filters
from hubgate.scim.discovery import MAX_COUNT
from hubgate.scim.errors import InvalidFilter, InvalidValue

__all__ = ["MAX_COUNT", "Page", "UserWithGroups", "everything", "groups", "users"]


@dataclass(frozen=True, slots=True)
class Page:
    """``startIndex`` is 1-based (RFC 7644 §3.4.2.4); ``count`` 0 asks only the total."""

    start: int = 1
    count: int = 100
    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False

    def checked(self) -> Page:
        if self.sort_by is not None and len(self.sort_by) > 256:
            raise InvalidValue("sortBy is too long.")
        # Clamped, so no database is asked for an offset it cannot hold.
        start = min(max(self.start, 1), 2**31 - 1)
        count = min(max(self.count, 0), MAX_COUNT)
        return Page(start, count, self.filter, self.sort_by, self.descending)


# A User and its groups (id, displayName), by displayName.
UserWithGroups = tuple[ScimUser, list[tuple[str, str]]]


def users(db: Session, org: Org, page: Page) -> tuple[int, list[UserWithGroups]]:
    """The page of Users, each with its groups read in the same query."""
    where: list[ColumnElement[bool]] = [ScimUser.org_id == org.id]
    if page.filter:
        where.append(filters.users_where(page.filter))
    order = filters.user_sort_column(page.sort_by) if page.sort_by else ScimUser.created_at
    return _page(db, ScimUser, where, order, page, fetch=_users_with_groups)


def groups(db: Session, org: Org, page: Page) -> tuple[int, list[ScimGroup]]:
    where: list[ColumnElement[bool]] = [ScimGroup.org_id == org.id]
    if page.filter:
        where.append(filters.groups_where(page.filter))
    order = filters.group_sort_column(page.sort_by) if page.sort_by else ScimGroup.created_at
    return _page(db, ScimGroup, where, order, page)


def everything(db: Session, org: Org, page: Page) -> tuple[int, list[ScimUser | ScimGroup]]:
    """The root ``/.search`` (RFC 7644 §3.4.3): Users, then Groups, paged as one list.
    A comparison on what only one of them has (``userName``, ``members``) is false
    on the other, so one filter may name both; a ``sortBy`` that only one has
    orders that one only (§3.4.2.3); either is refused if neither has it."""
    outcomes = (
        _scope(page, ScimUser, ScimUser.org_id == org.id,
               partial(filters.users_where, root=True), filters.user_sort_column),
        _scope(page, ScimGroup, ScimGroup.org_id == org.id,
               partial(filters.groups_where, root=True), filters.group_sort_column),
    )  # fmt: skip
    scopes = [o for o in outcomes if not isinstance(o, InvalidFilter | InvalidValue)]
    if not scopes:
        raise next(o for o in outcomes if isinstance(o, InvalidFilter | InvalidValue))
    total, skip = 0, page.start - 1
    rows: list[ScimUser | ScimGroup] = []
    for model, where, order in scopes:
        found = _count(db, model, where)
        room = page.count - len(rows)
        if room > 0 and skip < found:
            rows += _rows(db, model, where, order, page.descending, skip, room)
        total, skip = total + found, max(skip - found, 0)
    return total, rows


_Scope = tuple[Any, list[ColumnElement[bool]], SQLColumnExpression[Any]]


def _scope(
    page: Page, model: Any, own: ColumnElement[bool], where_of: Any, sort_of: Any
) -> _Scope | InvalidFilter | InvalidValue:
    try:
        where = [own, where_of(page.filter)] if page.filter else [own]
        order = sort_of(page.sort_by) if page.sort_by else model.created_at
    except (InvalidFilter, InvalidValue) as exc:
        return exc
    return model, where, order


def _count(db: Session, model: Any, where: list[ColumnElement[bool]]) -> int:
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _rows(
    db: Session, model: Any, where: list[ColumnElement[bool]],
    order: SQLColumnExpression[Any], descending: bool, offset: int, limit: int,
) -> list[Any]:  # fmt: skip
    column = order.desc() if descending else order
    statement = select(model).where(*where).order_by(column, model.id).offset(offset).limit(limit)
    return list(db.scalars(statement))


def _users_with_groups(
    db: Session, model: Any, where: list[ColumnElement[bool]],
    order: SQLColumnExpression[Any], descending: bool, offset: int, limit: int,
) -> list[UserWithGroups]:  # fmt: skip
    """:func:`_rows` for Users, joined to their groups: one row per (User, group),
    or one with no group. The page is chosen before the join, and the joined rows
    keep its order, as ``order`` names the outer ``scim_users`` too."""
    column = order.desc() if descending else order
    chosen = (
        select(ScimUser.id).where(*where).order_by(column, ScimUser.id)
        .offset(offset).limit(limit).subquery()
    )  # fmt: skip
    statement = (
        select(ScimUser, ScimGroup.id, ScimGroup.display_name)
        .join(chosen, chosen.c.id == ScimUser.id)
        .outerjoin(ScimGroupMember, ScimGroupMember.scim_user_id == ScimUser.id)
        .outerjoin(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
        .order_by(column, ScimUser.id, ScimGroup.display_name, ScimGroup.id)
    )
    found: dict[str, UserWithGroups] = {}
    for user, group_id, name in db.execute(statement):
        _, its_groups = found.setdefault(user.id, (user, []))
        if group_id is not None:
            its_groups.append((group_id, name))
    return list(found.values())


def _page(
    db: Session, model: Any, where: list[ColumnElement[bool]],
    order: SQLColumnExpression[Any], page: Page, *, fetch: Callable[..., list[Any]] = _rows,
) -> tuple[int, list[Any]]:  # fmt: skip
    """The page (as ``fetch`` reads it) and the total; a page that is not full and
    not past the end says the total itself (a filter by userName finds one), so
    only then is it counted."""
    if page.count == 0:
        return _count(db, model, where), []
    offset = page.start - 1
    rows = fetch(db, model, where, order, page.descending, offset, page.count)
    if (rows and len(rows) < page.count) or (not rows and offset == 0):
        return offset + len(rows), rows
    return _count(db, model, where), rows
