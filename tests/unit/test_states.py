"""The named states (``hubgate.sso.states`` and their owners) are what the
database stores: each enum's values are exactly those its column's CHECK
constraint allows, so reading a row as a member never fails and no migration
was needed."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Table

from hubgate.db.models import OrgSso, SsoConnection
from hubgate.sso import policy
from hubgate.sso.states import ConnectionKind, ConnectionState, SsoModeName


def _allowed(table: Table, name: str) -> set[str]:
    """The values the table's CHECK constraint ``name`` lets its column hold."""
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint) and str(constraint.name).endswith(name):
            return set(re.findall(r"'([^']*)'", str(constraint.sqltext)))
    raise AssertionError(f"no CHECK constraint {name} on {table.name}")


@pytest.mark.parametrize(
    ("enum", "table", "constraint"),
    [
        (ConnectionState, SsoConnection.__table__, "state"),
        (ConnectionKind, SsoConnection.__table__, "kind"),
        (policy.SsoMode, OrgSso.__table__, "mode"),
    ],
)
def test_an_enum_is_what_its_column_allows(
    enum: type[StrEnum], table: Table, constraint: str
) -> None:
    assert {member.value for member in enum} == _allowed(table, constraint)


def test_a_new_connection_is_a_draft() -> None:
    default = SsoConnection.__table__.c.state.default
    assert default is not None
    assert ConnectionState(getattr(default, "arg", None)) is ConnectionState.DRAFT


def test_the_mode_names_are_the_policys() -> None:
    assert {name.value for name in SsoModeName} == set(policy.MODE_NAMES)


def test_a_member_equals_the_stored_string() -> None:
    assert ConnectionState.ACTIVE == "active"
    assert f"{ConnectionKind.OIDC}" == "oidc"
