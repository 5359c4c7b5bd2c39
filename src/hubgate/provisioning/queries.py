"""Listing SCIM resources (RFC 7644 §3.4.2): filter, sort and page in SQL, within
the caller's org only.

A filter arrives as the tree :mod:`hubgate.scim.filters` resolved and checked; here
it becomes a where-clause over :class:`ScimUser` or :class:`ScimGroup`, every value a
bound parameter, each comparison two-valued (a missing attribute makes it false,
never NULL) so that ``not`` negates it as RFC 7644 reads. The caller adds the org.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from scim2_models.path import CompareOperator
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from hubgate.db.models import Org, ScimGroup, ScimGroupMember, ScimUser, ScimUserEmail
from hubgate.provisioning.groups import members_of
from hubgate.provisioning.groups import record as group_record
from hubgate.provisioning.users import groups_of_each
from hubgate.provisioning.users import record as user_record
from hubgate.scim import filters
from hubgate.scim.discovery import MAX_COUNT
from hubgate.scim.documents import GroupRecord, Ref, UserRecord
from hubgate.scim.errors import InvalidFilter, InvalidValue

__all__ = [
    "MAX_COUNT", "Page", "everything", "group_sort_column", "groups",
    "groups_where", "user_sort_column", "users", "users_where",
]  # fmt: skip


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
_UserWithGroups = tuple[ScimUser, list[Ref]]


def users(db: Session, org: Org, page: Page) -> tuple[int, list[UserRecord]]:
    """The page of Users, each with its groups read in the same query."""
    where: list[ColumnElement[bool]] = [ScimUser.org_id == org.id]
    if page.filter:
        where.append(users_where(page.filter))
    order = user_sort_column(page.sort_by) if page.sort_by else ScimUser.created_at
    total, found = _page(db, ScimUser, where, order, page, fetch=_users_with_groups)
    return total, [user_record(row, its) for row, its in found]


def groups(db: Session, org: Org, page: Page) -> tuple[int, list[GroupRecord]]:
    """The page of Groups, each with its members."""
    where: list[ColumnElement[bool]] = [ScimGroup.org_id == org.id]
    if page.filter:
        where.append(groups_where(page.filter))
    order = group_sort_column(page.sort_by) if page.sort_by else ScimGroup.created_at
    total, rows = _page(db, ScimGroup, where, order, page)
    return total, [group_record(row, members_of(db, row)) for row in rows]


def everything(db: Session, org: Org, page: Page) -> tuple[int, list[UserRecord | GroupRecord]]:
    """The root ``/.search`` (RFC 7644 §3.4.3): Users, then Groups, paged as one list.
    A comparison on what only one of them has (``userName``, ``members``) is false
    on the other, so one filter may name both; a ``sortBy`` that only one has
    orders that one only (§3.4.2.3); either is refused if neither has it."""
    outcomes = (
        _scope(page, ScimUser, ScimUser.org_id == org.id,
               partial(users_where, root=True), user_sort_column),
        _scope(page, ScimGroup, ScimGroup.org_id == org.id,
               partial(groups_where, root=True), group_sort_column),
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
    grouped = groups_of_each(db, [r for r in rows if isinstance(r, ScimUser)])
    return total, [
        user_record(r, grouped[r.id]) if isinstance(r, ScimUser)
        else group_record(r, members_of(db, r))
        for r in rows
    ]  # fmt: skip


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
) -> list[_UserWithGroups]:  # fmt: skip
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
    found: dict[str, _UserWithGroups] = {}
    for user, group_id, name in db.execute(statement):
        _, its_groups = found.setdefault(user.id, (user, []))
        if group_id is not None:
            its_groups.append(Ref(group_id, name))
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


# -- filters and sortBy as SQL ----------------------------------------------------------

Column = SQLColumnExpression[Any]


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where a scope's attributes are stored, by :attr:`filters.Attribute.key`: a
    column each (lowercased for caseExact=false), and for a multi-valued attribute
    its rows, joined to the resource by ``link``, with a column per sub-attribute."""

    single: Mapping[str, Column]
    multi_valued: Mapping[str, tuple[ColumnElement[bool], _Columns]] = field(default_factory=dict)


_USER_COLUMNS = _Columns(
    {
        "id": ScimUser.id, "username": ScimUser.user_name_key,
        "externalid": ScimUser.external_id, "displayname": func.lower(ScimUser.display_name),
        "name.givenname": func.lower(ScimUser.given_name),
        "name.familyname": func.lower(ScimUser.family_name), "active": ScimUser.active,
        "meta.created": ScimUser.created_at, "meta.lastmodified": ScimUser.updated_at,
    },
    {
        "emails": (ScimUserEmail.scim_user_id == ScimUser.id, _Columns({
            "value": ScimUserEmail.value_key, "type": func.lower(ScimUserEmail.type),
            "primary": ScimUserEmail.primary,
        })),
    },
)  # fmt: skip
_GROUP_COLUMNS = _Columns(
    {
        "id": ScimGroup.id, "displayname": ScimGroup.display_name_key,
        "externalid": ScimGroup.external_id, "meta.created": ScimGroup.created_at,
        "meta.lastmodified": ScimGroup.updated_at,
    },
    {
        "members": (ScimGroupMember.group_id == ScimGroup.id,
                    _Columns({"value": ScimGroupMember.scim_user_id})),
    },
)  # fmt: skip


def users_where(text: str, *, root: bool = False) -> ColumnElement[bool]:
    """The where-clause over :class:`ScimUser` for a Users ``filter`` (see
    :func:`filters.user_filter`); raises :class:`InvalidFilter`."""
    return _where(filters.user_filter(text, root=root), _USER_COLUMNS)


def groups_where(text: str, *, root: bool = False) -> ColumnElement[bool]:
    """The where-clause over :class:`ScimGroup` for a Groups ``filter``."""
    return _where(filters.group_filter(text, root=root), _GROUP_COLUMNS)


def user_sort_column(attr: str) -> Column:
    """The column a Users ``sortBy`` orders by; raises :class:`InvalidValue`."""
    return _USER_COLUMNS.single[filters.user_sort(attr).key]


def group_sort_column(attr: str) -> Column:
    """The column a Groups ``sortBy`` orders by; raises :class:`InvalidValue`."""
    return _GROUP_COLUMNS.single[filters.group_sort(attr).key]


def _where(node: filters.Node, columns: _Columns) -> ColumnElement[bool]:
    match node:
        case filters.Compare():
            return _compare(columns.single[node.attribute.key], node)
        case filters.IsNull():
            return columns.single[node.attribute.key].is_(None)
        case filters.Presence():
            return _present(columns.single[node.attribute.key], node.attribute)
        case filters.Negation():
            return not_(_where(node.expr, columns))
        case filters.And():
            return and_(*(_where(term, columns) for term in node.terms))
        case filters.Or():
            return or_(*(_where(term, columns) for term in node.terms))
        case filters.AnyValue():
            link, values = columns.multi_valued[node.attribute.key]
            return exists().where(link, _where(node.where, values))
        case filters.Never():
            return false()


_ESCAPE = "/"
_LIKE_PATTERNS = {
    CompareOperator.co: "%{}%",
    CompareOperator.sw: "{}%",
    CompareOperator.ew: "%{}",
}
_ORDERINGS: dict[CompareOperator, Callable[[Any, Any], ColumnElement[bool]]] = {
    CompareOperator.eq: operator.eq,
    CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge,
    CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}


def _compare(column: Column, node: filters.Compare) -> ColumnElement[bool]:
    """One comparison, false where the column is NULL. A string compares as RFC
    7644 §3.4.2.2 says: lowercased when caseExact is false (the column already is),
    lexicographically for the orderings, LIKE for co, sw and ew."""
    attribute, op, value = node.attribute, node.op, node.value
    if isinstance(value, str) and not attribute.case_exact:
        value = value.lower()
    if op in _ORDERINGS:
        condition = _ORDERINGS[op](column, value)
    else:
        condition = _like(column, attribute.case_exact, op, str(value))
    return and_(column.is_not(None), condition)


def _like(column: Column, case_exact: bool, op: CompareOperator, text: str) -> ColumnElement[bool]:
    """co / sw / ew as LIKE with %, _ and the escape character escaped.

    SQLite's LIKE ignores ASCII case, so a caseExact attribute also gets a guard
    that compares exactly (``replace`` and ``substr`` are case-sensitive on both
    SQLite and PostgreSQL)."""
    escaped = text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%")
    pattern = _LIKE_PATTERNS[op].format(escaped.replace("_", _ESCAPE + "_"))
    condition = column.like(pattern, escape=_ESCAPE)
    if not case_exact or not text:
        return condition
    return and_(condition, _exactly(column, op, text))


def _exactly(column: Column, op: CompareOperator, text: str) -> ColumnElement[bool]:
    if op is CompareOperator.co:
        return func.replace(column, text, "") != column
    if op is CompareOperator.sw:
        return func.substr(column, 1, len(text)) == text
    return func.substr(column, func.length(column) - len(text) + 1) == text


def _present(column: Column, attribute: filters.Attribute) -> ColumnElement[bool]:
    """``pr``: the attribute has a value, and a string is not empty (RFC 7644
    §3.4.2.2)."""
    if attribute.type is filters.AttributeType.STRING:
        return and_(column.is_not(None), column != "")
    return column.is_not(None)
