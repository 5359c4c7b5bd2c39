"""The pure parts of role mapping (hubgate.sso.mappings): which rule wins, what it
is remembered as, and that a pinned role is left alone."""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.access import OrgRole
from hubgate.sso.identity import Identity
from hubgate.sso.mappings import RoleRule, grants_for, role_settled, role_target

RULES = [
    RoleRule("groups", "staff", OrgRole.READ),
    RoleRule("department", "Research", OrgRole.ADMIN),
    RoleRule("groups", "ml-admins", OrgRole.ADMIN),
]


def _identity(*groups: str, **attributes: tuple[str, ...]) -> Identity:
    return Identity(
        connection_id=1, subject="s", email=None, email_verified=False, display_name=None,
        groups=groups, attributes=attributes,
    )  # fmt: skip


@dataclass
class Member:
    role: str = "write"
    role_source: str = "mapping"
    role_detail: str | None = "groups=staff"
    role_pinned: bool = False
    invited_role: str | None = None


def test_the_most_privileged_match_wins_and_names_its_rule() -> None:
    grants = grants_for(_identity("staff", "ml-admins"), RULES, [])
    assert grants.role is OrgRole.ADMIN and grants.detail == "groups=ml-admins"
    first_of_a_tie = grants_for(_identity("ml-admins", department=("Research",)), RULES, [])
    assert first_of_a_tie.detail == "department=Research"
    assert grants_for(_identity("nobody"), RULES, []).detail is None


def test_a_mapped_role_remembers_its_rule() -> None:
    member = Member()
    target = role_target(member, OrgRole.ADMIN, OrgRole.WRITE, detail="groups=ml-admins")
    assert target == (OrgRole.ADMIN, "mapping", "groups=ml-admins")
    same_role_other_rule = Member(role="admin", role_detail="groups=old")
    assert not role_settled(same_role_other_rule, OrgRole.ADMIN, OrgRole.WRITE, detail="groups=x")


def test_a_pinned_role_is_left_alone() -> None:
    pinned = Member(role="read", role_source="manual", role_detail=None, role_pinned=True)
    assert role_target(pinned, OrgRole.ADMIN, OrgRole.WRITE, detail="groups=ml-admins") is None
    assert role_target(pinned, None, OrgRole.WRITE, source="manual") is None
    assert role_settled(pinned, OrgRole.ADMIN, OrgRole.WRITE, detail="groups=ml-admins")
