"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3), parsed and checked into a
typed tree that a store compiles (:mod:`hubgate.provisioning.queries` to SQL).

The filter text is parsed by scim2-models' grammar (:class:`scim2_models.ScimFilter`,
RFC 7644 §3.4.2.2 with its errata); the syntax tree is then resolved over an
allow-list of attributes with the characteristics RFC 7643 gives them (type,
caseExact). Anything else is an :class:`InvalidFilter`:

- an attribute outside the allow-list, ``password`` (RFC 7643 §4.1.1) included;
- an operator the attribute's type does not take (an ordering or a substring on
  a boolean, a substring on a dateTime), or a value of the wrong type;
- a filter longer than :data:`MAX_FILTER_BYTES`, with more than
  :data:`MAX_COMPARISONS` comparisons, or nesting deeper than :data:`MAX_DEPTH`.
  Length and comparison count are checked before the text is parsed.

In the resolved tree each value has its attribute's type (a dateTime is an aware
:class:`~datetime.datetime` in UTC), ``ne`` is ``not eq`` (on a multi-valued
attribute: no value is equal), ``eq null`` is :class:`IsNull`, and a comparison is
two-valued: a missing attribute makes it false, so :class:`Negation` negates it as
RFC 7644 reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

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

from hubgate.scim.errors import InvalidFilter, InvalidValue

__all__ = [
    "GROUPS",
    "GROUP_URN",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_BYTES",
    "USERS",
    "USER_URN",
    "And",
    "AnyValue",
    "Attribute",
    "AttributeType",
    "Compare",
    "IsNull",
    "MultiValued",
    "Negation",
    "Never",
    "Node",
    "Or",
    "Presence",
    "Scope",
    "group_filter",
    "group_sort",
    "parse",
    "user_filter",
    "user_sort",
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

_ORDERINGS = frozenset(
    {CompareOperator.eq, CompareOperator.gt, CompareOperator.ge, CompareOperator.lt,
     CompareOperator.le}
)  # fmt: skip
# A quoted string, closed or not: the optional closing quote keeps the scan linear.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')
_OPERATOR = re.compile(
    r"(?<![A-Za-z0-9$_-])(?:eq|ne|co|sw|ew|gt|ge|lt|le|pr)(?![A-Za-z0-9$_-])", re.IGNORECASE
)


class AttributeType(Enum):
    """The attribute data types of RFC 7643 §2.3 that hubgate filters on."""

    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"


@dataclass(frozen=True, slots=True)
class Attribute:
    """A filterable attribute: its key (lowercased, ``name.givenname``), type and
    caseExact (RFC 7643 §2.2)."""

    key: str
    type: AttributeType = AttributeType.STRING
    case_exact: bool = True


@dataclass(frozen=True, slots=True)
class MultiValued:
    """A multi-valued attribute (RFC 7643 §2.4) and its filterable sub-attributes."""

    key: str
    sub_attributes: Mapping[str, Attribute]


@dataclass(frozen=True, slots=True)
class Scope:
    """The attributes a filter may name, keys lowercased (RFC 7643 §2.1)."""

    urn: str | None
    attributes: Mapping[str, Attribute]
    multi_valued: Mapping[str, MultiValued] = field(default_factory=dict)


def _scope(urn: str, *attributes: Attribute, multi_valued: tuple[MultiValued, ...]) -> Scope:
    return Scope(urn, {a.key: a for a in attributes}, {m.key: m for m in multi_valued})


def _folded(key: str) -> Attribute:
    """A string attribute with caseExact=false."""
    return Attribute(key, case_exact=False)


USERS = _scope(
    USER_URN,
    Attribute("id"),
    _folded("username"),
    Attribute("externalid"),
    _folded("displayname"),
    _folded("name.givenname"),
    _folded("name.familyname"),
    Attribute("active", AttributeType.BOOLEAN),
    Attribute("meta.created", AttributeType.DATETIME),
    Attribute("meta.lastmodified", AttributeType.DATETIME),
    multi_valued=(
        MultiValued("emails", {
            "value": _folded("value"),
            "type": _folded("type"),
            "primary": Attribute("primary", AttributeType.BOOLEAN),
        }),
    ),
)  # fmt: skip
"""What a Users filter may name."""
GROUPS = _scope(
    GROUP_URN,
    Attribute("id"),
    _folded("displayname"),
    Attribute("externalid"),
    Attribute("meta.created", AttributeType.DATETIME),
    Attribute("meta.lastmodified", AttributeType.DATETIME),
    multi_valued=(MultiValued("members", {"value": Attribute("value")}),),
)
"""What a Groups filter may name."""


# -- the resolved tree ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compare:
    """``attribute op value``, false where the attribute has no value. ``op`` is
    never ``ne``; ``value`` is a ``bool``, an aware ``datetime`` or a ``str`` (as
    written: a caseExact=false attribute compares it case-insensitively)."""

    attribute: Attribute
    op: CompareOperator
    value: str | bool | datetime


@dataclass(frozen=True, slots=True)
class IsNull:
    """``attribute eq null``: the attribute has no value."""

    attribute: Attribute


@dataclass(frozen=True, slots=True)
class Presence:
    """``attribute pr``: it has a value, and a string is not empty."""

    attribute: Attribute


@dataclass(frozen=True, slots=True)
class Negation:
    expr: Node


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyValue:
    """One value of the multi-valued attribute satisfies ``where``, a tree over its
    sub-attributes (``emails[type eq "work"]``, or ``emails co "x"`` for its ``value``)."""

    attribute: MultiValued
    where: Node


@dataclass(frozen=True, slots=True)
class Never:
    """False: the attribute belongs to another resource type of a root search."""


Node = Compare | IsNull | Presence | Negation | And | Or | AnyValue | Never


def user_filter(text: str, *, root: bool = False) -> Node:
    """A Users ``filter`` (RFC 7644 §3.4.2.2) resolved over :data:`USERS`; raises
    :class:`InvalidFilter`. At the ``root`` (§3.4.3, every resource type at once)
    an attribute only Groups have is absent here, and a comparison on it false."""
    return _Resolver(USERS, (GROUPS,) if root else ()).visit(parse(text))


def group_filter(text: str, *, root: bool = False) -> Node:
    """A Groups ``filter`` resolved over :data:`GROUPS`, as :func:`user_filter`."""
    return _Resolver(GROUPS, (USERS,) if root else ()).visit(parse(text))


def parse(text: str) -> FilterNode:
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


class _Resolver(FilterVisitor[Node]):
    """Resolve a syntax tree over one resource's scope; attributes of the ``others``
    scopes (a root search) are absent, so :class:`Never`."""

    def __init__(self, scope: Scope, others: tuple[Scope, ...] = ()) -> None:
        self.scope = scope
        self.others = others

    def visit(self, node: FilterNode) -> Node:
        try:
            return super().visit(node)
        except _Absent:
            return Never()

    def visit_comparison(self, node: Comparison) -> Node:
        found = self._lookup(node.attr_path)
        if isinstance(found, Attribute):
            return _compare(found, node.op, node.value, node.attr_path)
        multi, attribute = found
        # RFC 7644 is silent on "ne" over many values; as scim2-models, read it as
        # "no value is equal", so that ne stays the negation of eq.
        if node.op is CompareOperator.ne:
            equal = _compare(attribute, CompareOperator.eq, node.value, node.attr_path)
            return Negation(AnyValue(multi, equal))
        return AnyValue(multi, _compare(attribute, node.op, node.value, node.attr_path))

    def visit_present(self, node: Present) -> Node:
        found = self._lookup(node.attr_path)
        if isinstance(found, Attribute):
            return Presence(found)
        multi, attribute = found
        return AnyValue(multi, Presence(attribute))

    def visit_not(self, node: Not) -> Node:
        return Negation(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> Node:
        terms = tuple(self.visit(term) for term in node.terms)
        return And(terms) if node.op is LogicalOperator.and_ else Or(terms)

    def visit_value_path(self, node: ValuePath) -> Node:
        """``emails[type eq "work"]``: one value satisfies the whole inner filter."""
        multi = self._multi_valued(node.attr_path)
        if multi is None or node.sub_attr is not None:
            raise self._elsewhere(node.attr_path)
        inner = _Resolver(Scope(urn=None, attributes=multi.sub_attributes))
        return AnyValue(multi, inner.visit(node.val_filter))

    def _multi_valued(self, path: AttrPath) -> MultiValued | None:
        self._check_path(path)
        return self.scope.multi_valued.get(path.attr.lower())

    def _lookup(self, path: AttrPath) -> Attribute | tuple[MultiValued, Attribute]:
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
                _Resolver(other)._lookup(path)
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


def _compare(attribute: Attribute, op: CompareOperator, value: object, path: AttrPath) -> Node:
    """One comparison (RFC 7644 §3.4.2.2, Table 3), its value checked for the
    attribute's type."""
    if value is None:
        return _compare_null(attribute, op, path)
    if op is CompareOperator.ne:
        return Negation(_compare(attribute, CompareOperator.eq, value, path))
    if attribute.type is AttributeType.BOOLEAN:
        return Compare(attribute, op, _boolean(op, value, path))
    if attribute.type is AttributeType.DATETIME:
        return Compare(attribute, op, _datetime(op, value, path))
    return Compare(attribute, op, _string(op, value, path))


def _compare_null(attribute: Attribute, op: CompareOperator, path: AttrPath) -> Node:
    if op is CompareOperator.eq:
        return IsNull(attribute)
    if op is CompareOperator.ne:
        return Negation(IsNull(attribute))
    raise _refuse(path, op, "only eq and ne compare with null")


def _boolean(op: CompareOperator, value: object, path: AttrPath) -> bool:
    """RFC 7644 §3.4.2.2: gt, ge, lt, le on a boolean SHALL be refused; so are
    co, sw and ew, which have no meaning on one."""
    if op is not CompareOperator.eq:
        raise _refuse(path, op, "a boolean takes only eq, ne and pr")
    if not isinstance(value, bool):
        raise _refuse(path, op, "a boolean compares with true or false")
    return value


def _datetime(op: CompareOperator, value: object, path: AttrPath) -> datetime:
    """A dateTime (RFC 7643 §2.3.5) compares with an ISO 8601 string; no time zone
    means UTC."""
    if op not in _ORDERINGS:
        raise _refuse(path, op, "a dateTime takes only eq, ne, gt, ge, lt, le and pr")
    if not isinstance(value, str):
        raise _refuse(path, op, "a dateTime compares with a quoted date and time")
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _refuse(path, op, f"{value[:40]!r} is not a date and time") from exc


def _string(op: CompareOperator, value: object, path: AttrPath) -> str:
    """A string compares with a string that a store can hold as text: no NUL, no
    lone surrogate."""
    if not isinstance(value, str):
        raise _refuse(path, op, "a string compares with a quoted string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(path, op, "the value is not valid Unicode") from exc
    if "\x00" in value:
        raise _refuse(path, op, "the value holds a NUL character")
    return value


def user_sort(attr: str) -> Attribute:
    """The attribute a Users ``sortBy`` orders by (RFC 7644 §3.4.2.3). Raises
    :class:`InvalidValue` for any other."""
    return _sort(attr, USERS)


def group_sort(attr: str) -> Attribute:
    """The attribute a Groups ``sortBy`` orders by (RFC 7644 §3.4.2.3). Raises
    :class:`InvalidValue` for any other."""
    return _sort(attr, GROUPS)


def _sort(attr: str, scope: Scope) -> Attribute:
    """RFC 7644 §3.4.2.3 lets a provider refuse a sortBy it does not support;
    hubgate refuses (400 invalidValue) rather than answer in an order not asked.
    Single-valued attributes sort, booleans do not."""
    name = attr.strip().lower()
    urn = (scope.urn or "").lower()
    if name.startswith(urn + ":"):
        name = name[len(urn) + 1 :]
    attribute = scope.attributes.get(name)
    if attribute is None or attribute.type is AttributeType.BOOLEAN:
        raise InvalidValue(f"sortBy {attr[:100]!r} is not an attribute hubgate sorts by.")
    return attribute
