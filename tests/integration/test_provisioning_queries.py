"""SCIM filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3) as SQL, against a real
database (:mod:`hubgate.provisioning.queries`; the parsing and its refusals are
unit-tested in ``tests/unit/test_scim_filters.py``).

A small org of five Users and three Groups; each filter is asserted by the ids it
selects, so the translation is checked on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.db.models import ScimGroup, ScimGroupMember, ScimUser, ScimUserEmail
from hubgate.provisioning.queries import (
    group_sort_column,
    groups_where,
    user_sort_column,
    users_where,
)
from hubgate.runtime import Runtime
from hubgate.scim.errors import InvalidFilter, TooMany
from hubgate.scim.filters import MAX_COMPARISONS, MAX_DEPTH, MAX_FILTER_BYTES
from tests.conftest import World

ALICE, BOB, CAROL, DAVE, ERIN = "u-alice", "u-bob", "u-carol", "u-dave", "u-erin"
EVERYONE = {ALICE, BOB, CAROL, DAVE, ERIN}
ENG, SALES, EMPTY = "g-eng", "g-sales", "g-empty"
ALL_GROUPS = {ENG, SALES, EMPTY}


def at(month: int) -> datetime:
    return datetime(2024, month, 1, tzinfo=UTC)


# (id, userName, externalId, displayName, givenName, familyName, active, created month,
#  emails as (value, type, primary))
PEOPLE = [
    (ALICE, "Alice@Example.com", "EXT-Alice", "Alice Liddell", "Alice", "Liddell", True, 1,
     [("Alice@Example.COM", "work", True), ("alice@home.test", "home", False)]),
    (BOB, "bob", "ext-bob", "Bob 100% Sure", "Bob", "Builder", False, 2,
     [("bob@acme.test", "Work", True), ("bob_home@x.test", "home", False)]),
    (CAROL, "carol_x", None, None, "Carol", None, True, 3,
     [("carol@acme.test", "home", False)]),
    (DAVE, "dave", "", "Dave 1000x/y", None, None, True, 4,
     [("dave@other.test", "work", False), ("dave@acme.test", "home", False)]),
    (ERIN, "erin", None, None, None, None, True, 5, []),
]  # fmt: skip


@pytest.fixture
def people(rt: Runtime, world: World) -> Runtime:
    """RFC 7644 §3.4.2.2's examples need Users with names, emails and dates."""
    org = world.org("acme", world.user("admin@acme.test"))
    accounts = [world.user(f"{row[0]}@accounts.test") for row in PEOPLE]
    with rt.db.transaction() as db:
        for account, row in zip(accounts, PEOPLE, strict=True):
            db.add(_scim_user(org.id, account.id, *row[:-1]))
            db.flush()
            db.add_all(
                ScimUserEmail(
                    scim_user_id=row[0], value=value, value_key=value.lower(), type=kind,
                    primary=primary,
                )
                for value, kind, primary in row[-1]
            )  # fmt: skip
        _add_groups(db, org.id)
    return rt


def _scim_user(
    org_id: int, user_id: int, sid: str, name: str, ext: str | None, display: str | None,
    given: str | None, family: str | None, active: bool, month: int,
) -> ScimUser:  # fmt: skip
    return ScimUser(
        id=sid, org_id=org_id, user_id=user_id, user_name=name, user_name_key=name.lower(),
        external_id=ext, display_name=display, given_name=given, family_name=family,
        active=active, created_at=at(month), updated_at=at(month + 5),
    )  # fmt: skip


def _add_groups(db: Session, org_id: int) -> None:
    for gid, name, ext, month, members in [
        (ENG, "Engineers", "G-ENG", 1, [ALICE, BOB]),
        (SALES, "Sales 100%", None, 2, [CAROL]),
        (EMPTY, "empty_group", "g-eng", 3, []),
    ]:
        db.add(
            ScimGroup(
                id=gid, org_id=org_id, display_name=name, display_name_key=name.lower(),
                external_id=ext, created_at=at(month), updated_at=at(month + 5),
            )
        )  # fmt: skip
        db.flush()
        db.add_all(ScimGroupMember(group_id=gid, scim_user_id=uid) for uid in members)


def select_users(rt: Runtime, text: str) -> set[str]:
    with rt.db.transaction() as db:
        return set(db.scalars(select(ScimUser.id).where(users_where(text))))


def select_groups(rt: Runtime, text: str) -> set[str]:
    with rt.db.transaction() as db:
        return set(db.scalars(select(ScimGroup.id).where(groups_where(text))))


# RFC 7644 §3.4.2.2, Table 3: every operator, on each kind of attribute.
USER_FILTERS: list[tuple[str, set[str]]] = [
    # userName is caseExact=false; attribute names are case-insensitive (RFC 7643 §2.1).
    ('userName eq "alice@example.com"', {ALICE}),
    ('USERNAME EQ "ALICE@EXAMPLE.COM"', {ALICE}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "BOB"', {BOB}),
    ('userName ne "bob"', EVERYONE - {BOB}),
    ('userName co "EXAMPLE"', {ALICE}),
    ('userName sw "B"', {BOB}),
    ('userName ew ".COM"', {ALICE}),
    ('userName gt "carol"', {CAROL, DAVE, ERIN}),
    ('userName ge "bob"', {BOB, CAROL, DAVE, ERIN}),
    ('userName lt "bob"', {ALICE}),
    ('userName le "bob"', {ALICE, BOB}),
    ('userName pr', EVERYONE),
    # externalId is caseExact=true, and "" is not present.
    ('externalId eq "EXT-Alice"', {ALICE}),
    ('externalId eq "ext-alice"', set()),
    ('externalId co "Alice"', {ALICE}),
    ('externalId co "ALICE"', set()),
    ('externalId sw "ext"', {BOB}),
    ('externalId ew "BOB"', set()),
    ('externalId ew "bob"', {BOB}),
    ('externalId pr', {ALICE, BOB}),
    ('not (externalId pr)', {CAROL, DAVE, ERIN}),
    ('externalId eq null', {CAROL, ERIN}),
    ('externalId ne null', {ALICE, BOB, DAVE}),
    ('externalId ne "ext-bob"', EVERYONE - {BOB}),
    ('id eq "u-carol"', {CAROL}),
    ('id sw "u-"', EVERYONE),
    ('displayName eq "alice LIDDELL"', {ALICE}),
    ('displayName ne "alice liddell"', EVERYONE - {ALICE}),
    ('name.givenName eq "ALICE"', {ALICE}),
    ('name.givenName pr', {ALICE, BOB, CAROL}),
    ('name.familyName sw "l"', {ALICE}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:name.familyName pr', {ALICE, BOB}),
    # active is a boolean.
    ('active eq true', {ALICE, CAROL, DAVE, ERIN}),
    ('active eq false', {BOB}),
    ('active ne true', {BOB}),
    ('active pr', EVERYONE),
    # meta.created / meta.lastModified are dateTimes (RFC 7643 §2.3.5).
    ('meta.created gt "2024-02-01T00:00:00Z"', {CAROL, DAVE, ERIN}),
    ('meta.created ge "2024-02-01T00:00:00Z"', {BOB, CAROL, DAVE, ERIN}),
    ('meta.created lt "2024-02-01T00:00:00Z"', {ALICE}),
    ('meta.created le "2024-02-01T00:00:00Z"', {ALICE, BOB}),
    ('meta.created eq "2024-03-01T01:00:00+01:00"', {CAROL}),
    ('meta.created ne "2024-03-01T00:00:00"', EVERYONE - {CAROL}),
    ('meta.lastModified ge "2024-09-01T00:00:00Z"', {DAVE, ERIN}),
    ('meta.created pr', EVERYONE),
]  # fmt: skip

# RFC 7644 §3.4.2.2: a multi-valued attribute matches when any value does; a
# value path makes one value satisfy the whole bracket.
EMAIL_FILTERS: list[tuple[str, set[str]]] = [
    ('emails eq "alice@example.com"', {ALICE}),
    ('emails.value eq "BOB@ACME.TEST"', {BOB}),
    ('emails co "@ACME"', {BOB, CAROL, DAVE}),
    ('emails.value ew ".test"', {ALICE, BOB, CAROL, DAVE}),
    ('emails.type eq "work"', {ALICE, BOB, DAVE}),
    ('emails.primary eq true', {ALICE, BOB}),
    ('emails pr', {ALICE, BOB, CAROL, DAVE}),
    ('not (emails pr)', {ERIN}),
    ('emails ne "bob@acme.test"', EVERYONE - {BOB}),
    ('emails[type eq "work"]', {ALICE, BOB, DAVE}),
    ('emails[type eq "work" and value co "@acme"]', {BOB}),
    ('emails.type eq "work" and emails.value co "@acme"', {BOB, DAVE}),
    ('emails[type eq "work"].value co "@acme"', {BOB}),
    ('emails[type eq "work" and primary eq false]', {DAVE}),
    ('emails[not (type eq "work")]', {ALICE, BOB, CAROL, DAVE}),
    ('emails[type eq "home" or primary eq true] and active eq false', {BOB}),
    ('emails[VALUE sw "carol"]', {CAROL}),
]  # fmt: skip

# RFC 7644 §3.4.2.2: "and" binds tighter than "or"; parentheses group; "not" negates.
LOGIC_FILTERS: list[tuple[str, set[str]]] = [
    ('userName eq "bob" or userName eq "dave" and active eq false', {BOB}),
    ('(userName eq "bob" or userName eq "dave") and active eq true', {DAVE}),
    ('userName eq "dave" and active eq true or userName eq "bob"', {BOB, DAVE}),
    ('not (userName eq "bob" or userName eq "dave")', {ALICE, CAROL, ERIN}),
    ('not (userName eq "bob") and not (userName eq "dave")', {ALICE, CAROL, ERIN}),
    ('not(not(active eq false))', {BOB}),
    ('not (displayName co "dave")', {ALICE, BOB, CAROL, ERIN}),
    ('((userName sw "a") or (userName sw "e")) and (emails pr)', {ALICE}),
]  # fmt: skip

# LIKE metacharacters in the value are literal (co/sw/ew escape %, _ and "/").
ESCAPING_FILTERS: list[tuple[str, set[str]]] = [
    ('displayName co "100%"', {BOB}),
    ('displayName co "0%"', {BOB}),
    ('userName co "_"', {CAROL}),
    ('userName co "%"', set()),
    ('emails co "alice_home"', set()),
    ('emails co "bob_"', {BOB}),
    ('userName co "/"', set()),
    ('displayName co "x/y"', {DAVE}),
    ('displayName ew "0X/Y"', {DAVE}),
    ('externalId co "%"', set()),
    ('externalId co "_"', set()),
    ('userName co ""', EVERYONE),
]  # fmt: skip

# Filter injection: quotes end up inside the bound value, never in the SQL.
INJECTION_FILTERS: list[tuple[str, set[str]]] = [
    ('userName eq "x\\" or userName pr"', set()),
    ('userName eq "bob\' OR \'1\'=\'1"', set()),
    ('userName eq "bob\\"; DROP TABLE scim_users; --"', set()),
    ('userName co "\') or 1=1 --"', set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    USER_FILTERS + EMAIL_FILTERS + LOGIC_FILTERS + ESCAPING_FILTERS + INJECTION_FILTERS,
)
def test_rfc7644_3_4_2_2_users(people: Runtime, text: str, expected: set[str]) -> None:
    assert select_users(people, text) == expected


GROUP_FILTERS: list[tuple[str, set[str]]] = [
    ('displayName eq "ENGINEERS"', {ENG}),
    ('urn:ietf:params:scim:schemas:core:2.0:Group:displayName sw "eng"', {ENG}),
    ('displayName co "100%"', {SALES}),
    ('displayName co "_"', {EMPTY}),
    ('displayName ne "engineers"', {SALES, EMPTY}),
    ('displayName gt "f"', {SALES}),
    ('externalId eq "G-ENG"', {ENG}),
    ('externalId eq "g-eng"', {EMPTY}),
    ('externalId sw "G"', {ENG}),
    ('externalId pr', {ENG, EMPTY}),
    ('id eq "g-sales"', {SALES}),
    ('members eq "u-alice"', {ENG}),
    ('members.value eq "u-carol"', {SALES}),
    ('members.value eq "U-CAROL"', set()),
    ('members pr', {ENG, SALES}),
    ('not (members pr)', {EMPTY}),
    ('members[value eq "u-bob"]', {ENG}),
    ('members ne "u-alice"', {SALES, EMPTY}),
    ('members co "carol" or displayName eq "empty_group"', {SALES, EMPTY}),
    ('meta.created gt "2024-01-15T00:00:00Z"', {SALES, EMPTY}),
    ('meta.lastModified le "2024-07-01T00:00:00Z"', {ENG, SALES}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GROUP_FILTERS)
def test_rfc7644_3_4_2_2_groups(people: Runtime, text: str, expected: set[str]) -> None:
    assert select_groups(people, text) == expected


# Bounds: length, comparisons and depth, each refused before any SQL.


def _nested(depth: int) -> str:
    return "not (" * depth + "active pr" + ")" * depth


def test_depth_up_to_the_bound_is_accepted(people: Runtime) -> None:
    assert select_users(people, _nested(MAX_DEPTH)) == EVERYONE
    with pytest.raises(InvalidFilter, match=f"nests more than {MAX_DEPTH}"):
        users_where(_nested(MAX_DEPTH + 1))


def test_redundant_brackets_count_toward_the_depth(people: Runtime) -> None:
    grouped = "(" * MAX_DEPTH + "active pr" + ")" * MAX_DEPTH
    assert select_users(people, grouped) == EVERYONE
    for deeper in ("(" + grouped + ")", f"emails[{grouped[:-1]} and value pr)]"):
        with pytest.raises(InvalidFilter, match=f"nests more than {MAX_DEPTH}"):
            users_where(deeper)
    # Brackets inside a quoted value are text, not nesting.
    assert users_where(f'userName eq "{"(" * 40}"') is not None


def test_comparisons_up_to_the_bound_are_accepted(people: Runtime) -> None:
    text = " or ".join(f'userName eq "u{i}"' for i in range(MAX_COMPARISONS - 1))
    assert select_users(people, text + ' or userName eq "bob"') == {BOB}
    with pytest.raises(InvalidFilter, match=f"more than {MAX_COMPARISONS} comparisons"):
        users_where(text + ' or userName eq "bob" or active pr')


def test_operator_words_inside_values_do_not_count(people: Runtime) -> None:
    value = " ".join(["eq pr co"] * 40)
    assert select_users(people, f'userName eq "{value}" or userName eq "bob"') == {BOB}


def test_length_is_bounded_in_bytes(people: Runtime) -> None:
    head = 'userName eq "'
    fits = head + "a" * (MAX_FILTER_BYTES - len(head) - 1) + '"'
    assert len(fits.encode()) == MAX_FILTER_BYTES
    assert select_users(people, fits) == set()
    with pytest.raises(InvalidFilter, match=f"longer than {MAX_FILTER_BYTES} bytes"):
        users_where(fits.replace('"a', '"é', 1))
    with pytest.raises(InvalidFilter):
        users_where(head + "a" * 100_000 + '"')


# RFC 7644 §3.4.2.3: sortBy over the same allow-list; anything else is refused.


@pytest.mark.parametrize(
    ("attr", "expected"),
    [
        ("userName", [ALICE, BOB, CAROL, DAVE, ERIN]),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName", [ALICE, BOB, CAROL, DAVE, ERIN]),
        ("meta.created", [ALICE, BOB, CAROL, DAVE, ERIN]),
        ("META.LASTMODIFIED", [ALICE, BOB, CAROL, DAVE, ERIN]),
        ("name.givenName", [ALICE, BOB, CAROL]),
        ("name.familyName", [BOB, ALICE]),
        ("displayName", [ALICE, BOB, DAVE]),
        ("externalId", [DAVE, ALICE, BOB]),
    ],
)  # fmt: skip
def test_rfc7644_3_4_2_3_user_sort(people: Runtime, attr: str, expected: list[str]) -> None:
    column = user_sort_column(attr)
    with people.db.transaction() as db:
        query = select(ScimUser.id, column).where(column.is_not(None))
        rows = db.execute(query.order_by(column.asc(), ScimUser.id)).all()
    assert [row[0] for row in rows] == expected


def test_rfc7644_3_4_2_3_group_sort(people: Runtime) -> None:
    with people.db.transaction() as db:
        by_name = db.scalars(select(ScimGroup.id).order_by(group_sort_column("displayName")))
        assert list(by_name) == [EMPTY, ENG, SALES]
        newest = db.scalars(select(ScimGroup.id).order_by(group_sort_column("meta.created").desc()))
        assert list(newest) == [EMPTY, SALES, ENG]


# Property: whatever the text, a where-clause that runs, or an InvalidFilter.

_ATTRS = [
    "userName", "externalId", "displayName", "name.givenName", "name.familyName", "active",
    "id", "emails", "emails.value", "emails.type", "emails.primary", "meta.created",
    "meta.lastModified", "members", "members.value", "value", "type", "primary", "password",
    "title", "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
]  # fmt: skip
_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ"]
_LITERALS = ["true", "false", "null", "0", "-2.5e3", "1e400", '"\\u0000"', '"\\ud800"', '"%_/"']
_VALUES = st.one_of(
    st.sampled_from(_LITERALS),
    st.text(max_size=20).map(json.dumps),
    st.datetimes(timezones=st.just(UTC)).map(lambda moment: f'"{moment.isoformat()}"'),
)
_LEAVES = st.one_of(
    st.builds("{} {} {}".format, st.sampled_from(_ATTRS), st.sampled_from(_OPS), _VALUES),
    st.sampled_from(_ATTRS).map("{} pr".format),
)


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{} and {}".format, inner, inner),
        st.builds("{} or {}".format, inner, inner),
        inner.map("not ({})".format),
        inner.map("({})".format),
        st.builds("{}[{}]".format, st.sampled_from(["emails", "members", "userName"]), inner),
    )


# Raw text, and filters built from the grammar's pieces (so most reach the translator).
_TEXTS = st.one_of(
    st.text(max_size=200),
    st.recursive(_LEAVES, _compose, max_leaves=8).filter(lambda text: len(text) <= 200),
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_TEXTS)
def test_any_text_gives_a_clause_that_runs_or_invalid_filter(people: Runtime, text: str) -> None:
    for where, model in ((users_where, ScimUser), (groups_where, ScimGroup)):
        try:
            clause = where(text)
        except (InvalidFilter, TooMany):
            continue
        with people.db.transaction() as db:
            db.execute(select(model.id).where(clause)).all()
