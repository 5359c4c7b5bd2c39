"""The pure parts of role and team mapping (hubgate.sso.mappings): which rule wins,
what it is remembered as, that a pinned role is left alone, which team places a
sign-in adds, changes and takes back, and which mapping sets are refused."""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.access import OrgRole, TeamRole
from hubgate.sso.identity import Identity
from hubgate.sso.mappings import (
    RoleRule,
    TeamRule,
    grants_for,
    role_settled,
    role_target,
    team_changes,
    unsettled_role_rules,
)

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


def test_no_match_falls_back_to_the_invitation_then_the_default() -> None:
    invited = Member(role="admin", invited_role="read")
    assert role_target(invited, None, OrgRole.WRITE) == (OrgRole.READ, "invitation", None)
    assert role_target(Member(role="admin"), None, OrgRole.WRITE) == (
        OrgRole.WRITE,
        "default",
        None,
    )
    by_hand = Member(role="admin", role_source="manual", role_detail=None)
    assert role_target(by_hand, None, OrgRole.WRITE) is None  # a role set by hand stays


TEAM_RULES = [
    TeamRule("groups", "ml-leads", 1, TeamRole.ADMIN),
    TeamRule("groups", "ml", 1, TeamRole.READ),  # a lower match after a higher one
    TeamRule("department", "Research", 2, TeamRole.WRITE),
]


def test_teams_add_up_each_at_its_highest_matching_role() -> None:
    grants = grants_for(_identity("ml", "ml-leads", department=("Research",)), [], TEAM_RULES)
    assert grants.teams == {1: TeamRole.ADMIN, 2: TeamRole.WRITE}
    assert grants.role is None
    assert grants_for(_identity("ml"), [], TEAM_RULES).teams == {1: TeamRole.READ}
    assert grants_for(_identity("Research"), [], TEAM_RULES).teams == {}  # groups != department


def test_team_changes_add_update_and_remove_only_their_own_places() -> None:
    places = {
        1: ("read", "mapping"),  # raised to admin
        2: ("write", "mapping"),  # no longer asserted: removed
        3: ("read", "manual"),  # set by hand: neither raised nor taken over
        4: ("write", "mapping"),  # unchanged
        5: ("read", "scim"),  # another source's: stays
    }
    granted = {1: TeamRole.ADMIN, 3: TeamRole.ADMIN, 4: TeamRole.WRITE, 6: TeamRole.READ}
    added, updated, removed = team_changes(places, granted, "mapping")
    assert added == {6: TeamRole.READ}
    assert updated == {1: TeamRole.ADMIN}
    assert removed == [2]


def test_team_changes_of_nothing_granted_remove_every_place_of_the_source() -> None:
    places = {1: ("read", "scim"), 2: ("write", "mapping"), 3: ("read", "scim")}
    assert team_changes(places, {}, "scim") == ({}, {}, [1, 3])


def test_role_mappings_must_keep_a_way_to_be_admin() -> None:
    no_admin = [RoleRule("groups", "staff", OrgRole.WRITE)]
    refused = unsettled_role_rules(no_admin, lambda: False)
    assert refused is not None and refused.code == "no_admin_path"
    assert unsettled_role_rules(no_admin, lambda: True) is None  # an admin set by hand
    assert unsettled_role_rules(RULES, lambda: False) is None
    assert unsettled_role_rules([], lambda: False) is None  # no mappings: roles by hand


def test_an_attribute_value_maps_to_one_role() -> None:
    twice = [*RULES, RoleRule("groups", "staff", OrgRole.WRITE)]
    refused = unsettled_role_rules(twice, lambda: True)
    assert refused is not None and refused.code == "invalid_mapping"
