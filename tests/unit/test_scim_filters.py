"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3) parsed into the typed tree
a store compiles (:mod:`hubgate.scim.filters`), with no database: what each filter
resolves to, and each refusal with its reason. The SQL it becomes is checked
against a database in ``tests/integration/test_provisioning_queries.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from scim2_models.path import CompareOperator

from hubgate.scim import filters
from hubgate.scim.errors import InvalidFilter, InvalidValue
from hubgate.scim.filters import (
    GROUPS,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FILTER_BYTES,
    USERS,
    And,
    AnyValue,
    Attribute,
    Compare,
    IsNull,
    Negation,
    Never,
    Node,
    Or,
    Presence,
    group_filter,
    group_sort,
    parse,
    user_filter,
    user_sort,
)

EQ, GT, CO = CompareOperator.eq, CompareOperator.gt, CompareOperator.co
USER_NAME = USERS.attributes["username"]
EXTERNAL_ID = USERS.attributes["externalid"]
ACTIVE = USERS.attributes["active"]
CREATED = USERS.attributes["meta.created"]
EMAILS = USERS.multi_valued["emails"]
MEMBERS = GROUPS.multi_valued["members"]


# What a filter resolves to: attributes by their RFC 7643 characteristics, values typed.
RESOLVED: list[tuple[str, Node]] = [
    ('userName eq "Bob"', Compare(USER_NAME, EQ, "Bob")),
    ('USERNAME EQ "Bob"', Compare(USER_NAME, EQ, "Bob")),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"', Compare(USER_NAME, EQ, "x")),
    ('userName ne "bob"', Negation(Compare(USER_NAME, EQ, "bob"))),
    ('externalId co "A"', Compare(EXTERNAL_ID, CO, "A")),
    ("active eq true", Compare(ACTIVE, EQ, True)),
    ("not (active eq false)", Negation(Compare(ACTIVE, EQ, False))),
    ('meta.created gt "2024-05-01T12:00:00"', Compare(CREATED, GT, datetime(2024, 5, 1, 12, tzinfo=UTC))),
    ('meta.created gt "2024-05-01T12:00:00+02:00"', Compare(CREATED, GT, datetime(2024, 5, 1, 10, tzinfo=UTC))),
    ("displayName eq null", IsNull(USERS.attributes["displayname"])),
    ("externalId ne null", Negation(IsNull(EXTERNAL_ID))),
    ("name.givenName pr", Presence(USERS.attributes["name.givenname"])),
    # A multi-valued attribute stands for its value; ne is "no value is equal".
    ('emails co "@acme"', AnyValue(EMAILS, Compare(EMAILS.sub_attributes["value"], CO, "@acme"))),
    ('emails ne "a@b"', Negation(AnyValue(EMAILS, Compare(EMAILS.sub_attributes["value"], EQ, "a@b")))),
    ("emails.primary eq true", AnyValue(EMAILS, Compare(EMAILS.sub_attributes["primary"], EQ, True))),
    ("emails pr", AnyValue(EMAILS, Presence(EMAILS.sub_attributes["value"]))),
    # A value path: one value satisfies the whole inner filter.
    ('emails[type eq "work" and primary eq true]', AnyValue(EMAILS, And((
        Compare(EMAILS.sub_attributes["type"], EQ, "work"),
        Compare(EMAILS.sub_attributes["primary"], EQ, True),
    )))),
    ('userName eq "a" or userName eq "b" or active pr', Or((
        Compare(USER_NAME, EQ, "a"), Compare(USER_NAME, EQ, "b"), Presence(ACTIVE),
    ))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), RESOLVED)
def test_rfc7644_3_4_2_2_users_resolve(text: str, expected: Node) -> None:
    assert user_filter(text) == expected


def test_groups_resolve_over_their_own_attributes() -> None:
    assert group_filter('members eq "u-1"') == AnyValue(
        MEMBERS, Compare(MEMBERS.sub_attributes["value"], EQ, "u-1")
    )
    assert group_filter('displayName sw "eng"') == Compare(
        GROUPS.attributes["displayname"], CompareOperator.sw, "eng"
    )


def test_a_root_search_reads_the_other_types_attributes_as_absent() -> None:
    """RFC 7644 §3.4.3: one filter over Users and Groups; what only one has is
    false on the other, what neither has is refused."""
    both = 'userName eq "a" or members eq "u-1"'
    assert user_filter(both, root=True) == Or((Compare(USER_NAME, EQ, "a"), Never()))
    assert group_filter(both, root=True) == Or((Never(), group_filter('members eq "u-1"')))
    group_urn = 'urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"'
    assert user_filter(group_urn, root=True) == Never()
    assert group_filter("not (emails pr)", root=True) == Negation(Never())
    with pytest.raises(InvalidFilter, match="not an attribute"):
        user_filter('title eq "x"', root=True)
    with pytest.raises(InvalidFilter, match="not an attribute"):
        user_filter('members eq "u-1"')


def test_parse_keeps_scim2_models_syntax_tree() -> None:
    assert (
        str(parse('userName eq "a" and not (active pr)')) == 'userName eq "a" and not (active pr)'
    )


def test_sort_names_single_valued_attributes() -> None:
    assert user_sort("urn:ietf:params:scim:schemas:core:2.0:User:userName") == USER_NAME
    assert user_sort(" META.CREATED ") == CREATED
    assert group_sort("displayName") == GROUPS.attributes["displayname"]
    assert user_sort("name.familyName") == Attribute("name.familyname", case_exact=False)


# Refused with 400 invalidFilter, each for a reason an admin can read.
USER_REFUSALS: list[tuple[str, str]] = [
    ('title eq "x"', "not an attribute"),
    ('name.middleName eq "x"', "not an attribute"),
    ('emails.display eq "x"', "not an attribute"),
    ('emails[display eq "x"]', "not an attribute"),
    ('members eq "u-alice"', "not an attribute"),
    ('groups eq "g-eng"', "not an attribute"),
    ('userName.x eq "x"', "not an attribute"),
    ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"', "cannot be filtered"),
    ('urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"', "cannot be filtered"),
    ('emails[urn:ietf:params:scim:schemas:core:2.0:User:value eq "x"]', "cannot be filtered"),
    ('userName[value eq "x"]', "not an attribute"),
    # RFC 7643 §4.1.1: password is never given back in any form.
    ('password eq "hunter2"', "password"),
    ('PassWord pr', "password"),
    ('urn:ietf:params:scim:schemas:core:2.0:User:password eq "x"', "password"),
    ('userName eq "x" or password sw "a"', "password"),
    # Operators and values of the wrong type.
    ('active gt true', "boolean"),
    ('active co "t"', "boolean"),
    ('active eq "true"', "true or false"),
    ('emails.primary lt false', "boolean"),
    ('userName eq 1', "quoted string"),
    ('userName eq true', "quoted string"),
    ('userName gt null', "null"),
    ('meta.created co "2024"', "dateTime"),
    ('meta.created gt "yesterday"', "not a date"),
    ('meta.created gt 20240101', "quoted date"),
    ('meta.created gt "0001-01-01T00:00:00+01:00"', "not a date"),
    ('userName eq "\\u0000"', "NUL"),
    ('userName eq "\\ud800"', "Unicode"),
    # Syntax (RFC 7644 §3.4.2.2 ABNF): a tautology is not a filter.
    ('userName eq "x" or "1" eq "1"', "not valid"),
    ('userName eq "x" or 1 eq 1', "not valid"),
    ("userName eq 'x'", "not valid"),
    ('userName = "x"', "not valid"),
    ('userName eq', "not valid"),
    ('userName eq "x', "not valid"),
    ('userName eq "x"; DROP TABLE scim_users', "not valid"),
    ('userName eq "x") or (active pr', "not valid"),
    ('emails[type eq "work"', "not valid"),
    ('emails[members[value pr]]', "not valid"),
    ("", "not valid"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "reason"), USER_REFUSALS)
def test_rfc7644_3_4_2_2_refusals_are_invalid_filter(text: str, reason: str) -> None:
    with pytest.raises(InvalidFilter, match=reason) as refused:
        user_filter(text)
    assert refused.value.status == 400 and refused.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    "text", ['userName eq "x"', 'emails pr', 'members[display eq "x"]', 'password eq "x"', 'active pr']
)  # fmt: skip
def test_groups_refuse_what_groups_do_not_have(text: str) -> None:
    with pytest.raises(InvalidFilter):
        group_filter(text)


def _nested(depth: int) -> str:
    return "not (" * depth + "active pr" + ")" * depth


def test_depth_is_bounded() -> None:
    assert isinstance(user_filter(_nested(MAX_DEPTH)), Negation)
    with pytest.raises(InvalidFilter, match=f"nests more than {MAX_DEPTH}"):
        user_filter(_nested(MAX_DEPTH + 1))
    with pytest.raises(InvalidFilter, match=f"nests more than {MAX_DEPTH}"):
        user_filter("(" * (MAX_DEPTH + 1) + "active pr" + ")" * (MAX_DEPTH + 1))


def test_comparisons_and_bytes_are_bounded() -> None:
    text = " or ".join(f'userName eq "u{i}"' for i in range(MAX_COMPARISONS))
    assert len(user_filter(text).terms) == MAX_COMPARISONS  # type: ignore[union-attr]
    with pytest.raises(InvalidFilter, match=f"more than {MAX_COMPARISONS} comparisons"):
        user_filter(text + " or active pr")
    with pytest.raises(InvalidFilter, match=f"longer than {MAX_FILTER_BYTES} bytes"):
        user_filter('userName eq "' + "é" * MAX_FILTER_BYTES + '"')


@pytest.mark.parametrize("depth", [40, 300])
def test_deep_nesting_is_refused(depth: int) -> None:
    with pytest.raises(InvalidFilter):
        user_filter(_nested(depth))
    with pytest.raises(InvalidFilter):
        user_filter("(" * depth + "active pr" + ")" * depth + " and " + _nested(depth))


def test_ten_thousand_ors_are_refused_before_the_grammar_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Length and the comparison count are checked on the text, so an oversized
    filter costs one regex pass, never a parse of its thousands of terms."""

    def grammar(text: str) -> None:
        raise AssertionError(f"the grammar ran on {len(text)} characters")

    monkeypatch.setattr(filters, "ScimFilter", grammar)
    ors = " or ".join(f'userName eq "u{i}"' for i in range(10_000))
    packed = " or ".join(["active pr"] * (MAX_FILTER_BYTES // 13))  # just under 4 KiB
    assert len(packed) <= MAX_FILTER_BYTES
    with pytest.raises(InvalidFilter, match="longer than 4096 bytes"):
        user_filter(ors)
    with pytest.raises(InvalidFilter, match="more than 50 comparisons"):
        user_filter(packed)


@pytest.mark.parametrize(
    ("sort", "attr"),
    [
        (user_sort, "title"),
        (user_sort, "password"),
        (user_sort, "emails"),
        (user_sort, "urn:ietf:params:scim:schemas:core:2.0:Group:displayName"),
        (group_sort, "userName"),
        (group_sort, "members"),
        (group_sort, ""),
    ],
)
def test_unsupported_sort_is_invalid_value(sort: Callable[[str], Attribute], attr: str) -> None:
    with pytest.raises(InvalidValue, match="sortBy") as refused:
        sort(attr)
    assert refused.value.scim_type == "invalidValue"
