"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3) as SQLAlchemy expressions.

The filter text is parsed by scim2-models' grammar (:class:`scim2_models.ScimFilter`,
RFC 7644 §3.4.2.2 with its errata); the syntax tree is then translated over an
allow-list of attributes with the characteristics RFC 7643 gives them (type,
caseExact). Anything else is an :class:`InvalidFilter`:

- an attribute outside the allow-list, ``password`` (RFC 7643 §4.1.1) included;
- an operator the attribute's type does not take (an ordering or a substring on
  a boolean, a substring on a dateTime), or a value of the wrong type;
- a filter longer than :data:`MAX_FILTER_BYTES`, with more than
  :data:`MAX_COMPARISONS` comparisons, or nesting deeper than :data:`MAX_DEPTH`.
  Length and comparison count are checked before the text is parsed.

Every value is a bound parameter. Each comparison is two-valued (a missing
attribute makes it false, never NULL), so ``not`` negates it as RFC 7644 reads:
``ne`` is ``not eq``, and ``ne`` on a multi-valued attribute holds when no value
is equal. The clauses are over :class:`ScimUser` and :class:`ScimGroup`; the
caller adds the org.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, exists, false, func, not_, or_

from hubgate.db.models import ScimGroup, ScimGroupMember, ScimUser, ScimUserEmail
from hubgate.scim.errors import InvalidFilter, InvalidValue

__all__ = [
    "GROUP_URN",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_BYTES",
    "USER_URN",
    "group_sort_column",
    "groups_where",
    "user_sort_column",
    "users_where",
]

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"

MAX_FILTER_BYTES = 4096
"""Longest filter accepted, in UTF-8 bytes."""
MAX_COMPARISONS = 50
"""Most comparisons (``pr`` included) in one filter, value paths included."""
MAX_DEPTH = 10
"""Most nested ``and``/``or``/``not``/``[...]`` (a chain of one operator is one), and
most nested brackets, redundant ones included."""

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
# A quoted string, closed or not: the optional closing quote keeps the scan linear.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')
_OPERATOR = re.compile(
    r"(?<![A-Za-z0-9$_-])(?:eq|ne|co|sw|ew|gt|ge|lt|le|pr)(?![A-Za-z0-9$_-])", re.IGNORECASE
)


class _Type(Enum):
    """The attribute data types of RFC 7643 §2.3 that hubgate filters on."""

    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"


@dataclass(frozen=True, slots=True)
class _Attribute:
    """A filterable attribute: its column, type and caseExact (RFC 7643 §2.2).

    For a caseExact=false attribute the column is already lowercased."""

    column: SQLColumnExpression[Any]
    type: _Type = _Type.STRING
    case_exact: bool = True


@dataclass(frozen=True, slots=True)
class _MultiValued:
    """A multi-valued attribute kept in rows of its own: a filter on it is an
    EXISTS over the rows joined by ``link`` (RFC 7644 §3.4.2.2, "any value")."""

    link: ColumnElement[bool]
    sub_attributes: Mapping[str, _Attribute]


@dataclass(frozen=True, slots=True)
class _Scope:
    """The attributes a filter may name, keys lowercased (RFC 7643 §2.1)."""

    urn: str | None
    attributes: Mapping[str, _Attribute]
    multi_valued: Mapping[str, _MultiValued] = field(default_factory=dict)


def _lower(column: SQLColumnExpression[Any]) -> ColumnElement[str]:
    return func.lower(column)


_EMAILS = _MultiValued(
    link=ScimUserEmail.scim_user_id == ScimUser.id,
    sub_attributes={
        "value": _Attribute(ScimUserEmail.value_key, case_exact=False),
        "type": _Attribute(_lower(ScimUserEmail.type), case_exact=False),
        "primary": _Attribute(ScimUserEmail.primary, _Type.BOOLEAN),
    },
)
_MEMBERS = _MultiValued(
    link=ScimGroupMember.group_id == ScimGroup.id,
    sub_attributes={"value": _Attribute(ScimGroupMember.scim_user_id)},
)
_USERS = _Scope(
    urn=USER_URN,
    attributes={
        "id": _Attribute(ScimUser.id),
        "username": _Attribute(ScimUser.user_name_key, case_exact=False),
        "externalid": _Attribute(ScimUser.external_id),
        "displayname": _Attribute(_lower(ScimUser.display_name), case_exact=False),
        "name.givenname": _Attribute(_lower(ScimUser.given_name), case_exact=False),
        "name.familyname": _Attribute(_lower(ScimUser.family_name), case_exact=False),
        "active": _Attribute(ScimUser.active, _Type.BOOLEAN),
        "meta.created": _Attribute(ScimUser.created_at, _Type.DATETIME),
        "meta.lastmodified": _Attribute(ScimUser.updated_at, _Type.DATETIME),
    },
    multi_valued={"emails": _EMAILS},
)
_GROUPS = _Scope(
    urn=GROUP_URN,
    attributes={
        "id": _Attribute(ScimGroup.id),
        "displayname": _Attribute(ScimGroup.display_name_key, case_exact=False),
        "externalid": _Attribute(ScimGroup.external_id),
        "meta.created": _Attribute(ScimGroup.created_at, _Type.DATETIME),
        "meta.lastmodified": _Attribute(ScimGroup.updated_at, _Type.DATETIME),
    },
    multi_valued={"members": _MEMBERS},
)


def users_where(text: str, *, root: bool = False) -> ColumnElement[bool]:
    """The where-clause over :class:`ScimUser` for a Users ``filter`` (RFC 7644
    §3.4.2.2); raises :class:`InvalidFilter`. At the ``root`` (§3.4.3, every
    resource type at once) an attribute only Groups have is absent here, and a
    comparison on it false."""
    return _Translator(_USERS, (_GROUPS,) if root else ()).visit(_parse(text))


def groups_where(text: str, *, root: bool = False) -> ColumnElement[bool]:
    """The where-clause over :class:`ScimGroup` for a Groups ``filter``, as
    :func:`users_where`."""
    return _Translator(_GROUPS, (_USERS,) if root else ()).visit(_parse(text))


def _parse(text: str) -> FilterNode:
    """Check the cheap bounds, parse with scim2-models' grammar, check the depth."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILTER_BYTES:
        raise InvalidFilter(f"The filter is longer than {MAX_FILTER_BYTES} bytes.")
    outside_strings = _STRING.sub('""', text)
    if len(_OPERATOR.findall(outside_strings)) > MAX_COMPARISONS:
        raise InvalidFilter(f"The filter has more than {MAX_COMPARISONS} comparisons.")
    try:
        root = ScimFilter(text).ast
    except InvalidFilterException as exc:
        raise InvalidFilter(f"The filter is not valid: {exc.detail}.") from exc
    if _bracket_depth(outside_strings) > MAX_DEPTH or _depth(root) > MAX_DEPTH:
        raise InvalidFilter(f"The filter nests more than {MAX_DEPTH} expressions.")
    return root


def _bracket_depth(text: str) -> int:
    """How deep ``(`` and ``[`` nest, so that redundant grouping counts too (the
    parsed tree drops it)."""
    depth = deepest = 0
    for char in text:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def _depth(node: FilterNode) -> int:
    """How many logical operators and value paths nest (comparisons count 0)."""
    if isinstance(node, Not):
        return 1 + _depth(node.expr)
    if isinstance(node, LogicalExpr):
        return 1 + max(_depth(term) for term in node.terms)
    if isinstance(node, ValuePath):
        return 1 + _depth(node.val_filter)
    return 0


class _Absent(Exception):
    """The attribute belongs to another resource type of a root search."""


class _Translator(FilterVisitor[ColumnElement[bool]]):
    """Translate a filter tree into a where-clause over one resource's scope;
    attributes of the ``others`` scopes (a root search) are absent, so false."""

    def __init__(self, scope: _Scope, others: tuple[_Scope, ...] = ()) -> None:
        self.scope = scope
        self.others = others

    def visit(self, node: FilterNode) -> ColumnElement[bool]:
        try:
            return super().visit(node)
        except _Absent:
            return false()

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        found = self._lookup(node.attr_path)
        if isinstance(found, _Attribute):
            return _compare(found, node.op, node.value, node.attr_path)
        multi, attribute = found
        # RFC 7644 is silent on "ne" over many values; as scim2-models, read it as
        # "no value is equal", so that ne stays the negation of eq.
        negate = node.op is CompareOperator.ne
        op = CompareOperator.eq if negate else node.op
        match = exists().where(multi.link, _compare(attribute, op, node.value, node.attr_path))
        return not_(match) if negate else match

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        found = self._lookup(node.attr_path)
        if isinstance(found, _Attribute):
            return _present(found)
        multi, attribute = found
        return exists().where(multi.link, _present(attribute))

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        """``emails[type eq "work"]``: one row satisfies the whole inner filter."""
        multi = self._multi_valued(node.attr_path)
        if multi is None or node.sub_attr is not None:
            raise self._elsewhere(node.attr_path)
        inner = _Translator(_Scope(urn=None, attributes=multi.sub_attributes))
        return exists().where(multi.link, inner.visit(node.val_filter))

    def _multi_valued(self, path: AttrPath) -> _MultiValued | None:
        self._check_path(path)
        return self.scope.multi_valued.get(path.attr.lower())

    def _lookup(self, path: AttrPath) -> _Attribute | tuple[_MultiValued, _Attribute]:
        """The allow-listed attribute a path names; a multi-valued attribute without
        a sub-attribute stands for its ``value`` (RFC 7644 §3.4.2.2)."""
        name = path.attr.lower()
        sub = path.sub_attr.lower() if path.sub_attr else None
        multi = self._multi_valued(path)
        if multi is not None:
            attribute = multi.sub_attributes.get(sub or "value")
            if attribute is not None:
                return multi, attribute
        elif (attribute := self.scope.attributes.get(f"{name}.{sub}" if sub else name)) is not None:
            return attribute
        raise self._elsewhere(path)

    def _elsewhere(self, path: AttrPath) -> InvalidFilter | _Absent:
        """What to raise for a path this scope lacks: absent when another scope of
        a root search has it, else unknown."""
        for other in self.others:
            try:
                _Translator(other)._lookup(path)
            except InvalidFilter:
                continue
            return _Absent()
        return _unknown(path)

    def _check_path(self, path: AttrPath) -> None:
        if path.attr.lower() == "password":
            raise InvalidFilter("password cannot be filtered on (RFC 7643 §4.1.1).")
        if path.uri is not None and (self.scope.urn or "").lower() != path.uri.lower():
            if any((o.urn or "").lower() == path.uri.lower() for o in self.others):
                raise self._elsewhere(path)
            raise InvalidFilter(f"Attributes of {path.uri} cannot be filtered on here.")


def _unknown(path: AttrPath) -> InvalidFilter:
    return InvalidFilter(f"{path} is not an attribute this filter can use.")


def _refuse(path: AttrPath, op: CompareOperator, why: str) -> InvalidFilter:
    return InvalidFilter(f"{path} {op.value}: {why}.")


def _compare(
    attribute: _Attribute, op: CompareOperator, value: object, path: AttrPath
) -> ColumnElement[bool]:
    """One two-valued comparison (RFC 7644 §3.4.2.2, Table 3)."""
    column = attribute.column
    if value is None:
        return _compare_null(column, op, path)
    if op is CompareOperator.ne:
        return not_(_compare(attribute, CompareOperator.eq, value, path))
    if attribute.type is _Type.BOOLEAN:
        condition = _compare_boolean(column, op, value, path)
    elif attribute.type is _Type.DATETIME:
        condition = _compare_datetime(column, op, value, path)
    else:
        condition = _compare_string(attribute, op, value, path)
    return and_(column.is_not(None), condition)


def _compare_null(
    column: SQLColumnExpression[Any], op: CompareOperator, path: AttrPath
) -> ColumnElement[bool]:
    if op is CompareOperator.eq:
        return column.is_(None)
    if op is CompareOperator.ne:
        return column.is_not(None)
    raise _refuse(path, op, "only eq and ne compare with null")


def _compare_boolean(
    column: SQLColumnExpression[Any], op: CompareOperator, value: object, path: AttrPath
) -> ColumnElement[bool]:
    """RFC 7644 §3.4.2.2: gt, ge, lt, le on a boolean SHALL be refused; so are
    co, sw and ew, which have no meaning on one."""
    if op is not CompareOperator.eq:
        raise _refuse(path, op, "a boolean takes only eq, ne and pr")
    if not isinstance(value, bool):
        raise _refuse(path, op, "a boolean compares with true or false")
    return column == value


def _compare_datetime(
    column: SQLColumnExpression[Any], op: CompareOperator, value: object, path: AttrPath
) -> ColumnElement[bool]:
    """A dateTime (RFC 7643 §2.3.5) compares with an ISO 8601 string; no time zone
    means UTC."""
    if op not in _ORDERINGS:
        raise _refuse(path, op, "a dateTime takes only eq, ne, gt, ge, lt, le and pr")
    if not isinstance(value, str):
        raise _refuse(path, op, "a dateTime compares with a quoted date and time")
    try:
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _refuse(path, op, f"{value[:40]!r} is not a date and time") from exc
    return _ORDERINGS[op](column, moment)


def _compare_string(
    attribute: _Attribute, op: CompareOperator, value: object, path: AttrPath
) -> ColumnElement[bool]:
    """A string compares as RFC 7644 §3.4.2.2 says: lowercased when caseExact is
    false, lexicographically for the orderings, LIKE for co, sw and ew."""
    if not isinstance(value, str):
        raise _refuse(path, op, "a string compares with a quoted string")
    _check_storable(value, path, op)
    text = value if attribute.case_exact else value.lower()
    if op in _ORDERINGS:
        return _ORDERINGS[op](attribute.column, text)
    return _like(attribute, op, text)


def _check_storable(value: str, path: AttrPath, op: CompareOperator) -> None:
    """NUL and lone surrogates cannot be sent to the database as text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(path, op, "the value is not valid Unicode") from exc
    if "\x00" in value:
        raise _refuse(path, op, "the value holds a NUL character")


def _like(attribute: _Attribute, op: CompareOperator, text: str) -> ColumnElement[bool]:
    """co / sw / ew as LIKE with %, _ and the escape character escaped.

    SQLite's LIKE ignores ASCII case, so a caseExact attribute also gets a guard
    that compares exactly (``replace`` and ``substr`` are case-sensitive on both
    SQLite and PostgreSQL)."""
    column = attribute.column
    escaped = text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%")
    pattern = _LIKE_PATTERNS[op].format(escaped.replace("_", _ESCAPE + "_"))
    condition = column.like(pattern, escape=_ESCAPE)
    if not attribute.case_exact or not text:
        return condition
    return and_(condition, _exactly(column, op, text))


def _exactly(
    column: SQLColumnExpression[Any], op: CompareOperator, text: str
) -> ColumnElement[bool]:
    if op is CompareOperator.co:
        return func.replace(column, text, "") != column
    if op is CompareOperator.sw:
        return func.substr(column, 1, len(text)) == text
    return func.substr(column, func.length(column) - len(text) + 1) == text


def _present(attribute: _Attribute) -> ColumnElement[bool]:
    """``pr``: the attribute has a value, and a string is not empty (RFC 7644
    §3.4.2.2)."""
    column = attribute.column
    if attribute.type is _Type.STRING:
        return and_(column.is_not(None), column != "")
    return column.is_not(None)


def _sortable(scope: _Scope) -> Mapping[str, SQLColumnExpression[Any]]:
    """The single-valued, orderable attributes of a scope (not the booleans)."""
    return {
        name: attribute.column
        for name, attribute in scope.attributes.items()
        if attribute.type is not _Type.BOOLEAN
    }


_USER_SORT = _sortable(_USERS)
_GROUP_SORT = _sortable(_GROUPS)


def user_sort_column(attr: str) -> SQLColumnExpression[Any]:
    """The column a Users ``sortBy`` orders by (RFC 7644 §3.4.2.3); caseExact=false
    attributes sort lowercased. Raises :class:`InvalidValue` for any other."""
    return _sort_column(attr, USER_URN, _USER_SORT)


def group_sort_column(attr: str) -> SQLColumnExpression[Any]:
    """The column a Groups ``sortBy`` orders by (RFC 7644 §3.4.2.3). Raises
    :class:`InvalidValue` for any other attribute."""
    return _sort_column(attr, GROUP_URN, _GROUP_SORT)


def _sort_column(
    attr: str, urn: str, columns: Mapping[str, SQLColumnExpression[Any]]
) -> SQLColumnExpression[Any]:
    """RFC 7644 §3.4.2.3 lets a provider refuse a sortBy it does not support;
    hubgate refuses (400 invalidValue) rather than answer in an order not asked."""
    name = attr.strip().lower()
    if name.startswith(urn.lower() + ":"):
        name = name[len(urn) + 1 :]
    column = columns.get(name)
    if column is None:
        raise InvalidValue(f"sortBy {attr[:100]!r} is not an attribute hubgate sorts by.")
    return column
