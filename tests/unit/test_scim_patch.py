"""PATCH (RFC 7644 §3.5.2) on a User or Group as scim2-models holds it
(:mod:`hubgate.scim.patch`), with no database: the shapes Okta and Entra ID send
(``tests/integration/scim_fixtures/``) and the bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from scim2_models import EnterpriseUser

from hubgate.scim import documents
from hubgate.scim.documents import GroupDoc, GroupRecord, Ref, UserDoc, UserRecord
from hubgate.scim.errors import InvalidPath, InvalidValue, NoTarget, ScimError, TooMany
from hubgate.scim.patch import (
    MAX_OPERATIONS,
    MAX_PATH,
    MAX_USER_OPERATIONS,
    MAX_VALUE_KEYS,
    patch_group,
    patch_user,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "https://hub.example/scim/v2/acme"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _user(**attributes: Any) -> UserDoc:
    parsed = documents.parse_user({"schemas": [USER], "userName": "ada", **attributes})
    stored = UserRecord("u-1", documents.stored_user(parsed), [Ref("g-1", "eng")], NOW, NOW, 1)
    return documents.user_model(stored, BASE)


def _group(*members: str) -> GroupDoc:
    stored = GroupRecord("g-1", "eng", None, [Ref(m, None) for m in members], NOW, NOW, 1)
    return documents.group_model(stored, BASE)


def _members(group: GroupDoc) -> list[str]:
    return [str(m.value) for m in group.members or []]


def _emails(user: UserDoc) -> list[tuple[str, str | None]]:
    return [(str(e.type.value if e.type else None), e.value) for e in user.emails or []]


WORK = 'emails[type eq "work"].value'


def test_okta_deactivates_with_a_replace_without_path() -> None:
    user = _user(active=True)
    patch_user(user, _body({"op": "replace", "value": {"active": False}}))
    assert user.active is False


def test_entra_capitalizes_ops_and_sends_booleans_as_strings() -> None:
    user = _user(active=True, emails=[{"value": "ada@acme.example", "type": "work"}])
    patch_user(user, _body(
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@acme.example"},
        {"op": "Add", "path": "displayName", "value": "Ada L."},
    ))  # fmt: skip
    assert user.active is False and user.display_name == "Ada L."
    assert [str(e.value) for e in user.emails or []] == ["new@acme.example"]


def test_entra_names_the_manager_by_bare_id() -> None:
    user = _user()
    patch_user(user, _body({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "u-2"}))
    manager = user[EnterpriseUser].manager
    assert manager is not None and manager.value == "u-2" and manager.ref == "../Users/u-2"


def test_groups_and_roles_never_stay_on_a_patched_user() -> None:
    user = _user()
    assert user.groups
    patch_user(user, _body({"op": "replace", "path": "displayName", "value": "Ada"}))
    assert user.groups is None and user.roles is None


def test_a_refused_patch_is_a_scim_error() -> None:
    with pytest.raises(ScimError) as refused:
        patch_user(_user(), _body({"op": "replace", "path": "meta.created", "value": "x"}))
    assert refused.value.status == 400


def test_members_added_and_removed_by_filter() -> None:
    group = _group("u-1")
    patch_group(group, _body({"op": "add", "path": "members", "value": [{"value": "u-2"}]}))
    assert _members(group) == ["u-1", "u-2"]
    patch_group(group, _body({"op": "remove", "path": 'members[value eq "u-1"]'}))
    assert _members(group) == ["u-2"]


def test_entra_removes_members_by_value_list_in_turn() -> None:
    """RFC 7644 spells it with a value filter; Entra lists the values. Operations
    before and after it apply in their order."""
    group = _group("u-1", "u-2", "u-3")
    patch_group(group, _body(
        {"op": "Add", "path": "members", "value": [{"value": "u-4"}]},
        {"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-4"}]},
        {"op": "Replace", "path": "displayName", "value": "engineering"},
    ))  # fmt: skip
    assert _members(group) == ["u-2", "u-3"] and group.display_name == "engineering"


def test_okta_renames_with_the_groups_own_id() -> None:
    group = _group()
    patch_group(group, _body({"op": "replace", "value": {"id": "g-1", "displayName": "x"}}))
    assert group.display_name == "x"


def test_operations_are_bounded() -> None:
    many = [{"op": "add", "path": "displayName", "value": "x"}] * (MAX_OPERATIONS + 1)
    with pytest.raises(TooMany):
        patch_group(_group(), _body(*many))


def test_a_body_without_operations_is_refused() -> None:
    with pytest.raises(InvalidValue):
        patch_group(_group(), {"schemas": [PATCH_OP], "Operations": []})


def test_entra_replaces_with_a_value_object_keyed_by_paths() -> None:
    user = _user(emails=[{"value": "ada@acme.example", "type": "work"}], name={"familyName": "L"})
    patch_user(
        user, _body({"op": "Replace", "value": {WORK: "u@acme.example", "name.givenName": "G"}})
    )
    assert _emails(user) == [("work", "u@acme.example")]
    assert user.name is not None and (user.name.given_name, user.name.family_name) == ("G", "L")


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ({WORK: "first@acme.example", "emails": [{"value": "second@acme.example", "type": "work"}]},
         "second@acme.example"),
        ({"emails": [{"value": "second@acme.example", "type": "work"}], WORK: "first@acme.example"},
         "first@acme.example"),
    ],
)  # fmt: skip
def test_keys_keyed_by_paths_apply_in_their_turn(value: dict[str, Any], address: str) -> None:
    """The keys around a filtered path stay one operation without a path, which may
    carry the User's own read-only ``id`` unchanged as Okta's bodies do."""
    user = _user(emails=[{"value": "ada@acme.example", "type": "work"}])
    patch_user(user, _body({"op": "replace", "value": {"id": "u-1", **value, "nickName": "A"}}))
    assert _emails(user) == [("work", address)] and user.nick_name == "A"


@pytest.mark.parametrize("op", ["add", "Replace"])
def test_entra_writes_an_address_no_value_matches_yet(op: str) -> None:
    """RFC 7644 §3.5.2.1 adds a target that does not exist; for ``replace`` hubgate
    does the same where the filter describes one value (``patch._ENTRA``)."""
    user = _user(emails=[{"value": "ada@home.example", "type": "home"}])
    patch_user(user, _body({"op": op, "path": WORK, "value": "ada@acme.example"}))
    assert _emails(user) == [("home", "ada@home.example"), ("work", "ada@acme.example")]
    both = 'emails[type eq "other" and display eq "Lab"].value'
    patch_user(user, _body({"op": op, "path": both, "value": "lab@acme.example"}))
    assert user.emails is not None and user.emails[-1].display == "Lab"


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ('emails[type eq "work" or type eq "home"].value', "x@acme.example", NoTarget),
        ('emails[value co "nobody"].value', "x@acme.example", NoTarget),
        ('emails[type eq "work"].type', "home", InvalidValue),
    ],
)
def test_a_filter_that_describes_no_value_still_has_no_target(
    path: str, value: str, error: type[ScimError]
) -> None:
    """RFC 7644 §3.5.2.3; and a value that contradicts its own filter is refused."""
    user = _user(emails=[{"value": "ada@other.example", "type": "other"}])
    with pytest.raises(error):
        patch_user(user, _body({"op": "replace", "path": path, "value": value}))
    assert _emails(user) == [("other", "ada@other.example")]


def test_paths_value_keys_and_user_operations_are_bounded() -> None:
    long_path = "emails[" + " or ".join(['type eq "x"'] * 60) + "].value"
    assert len(long_path) > MAX_PATH
    with pytest.raises(InvalidPath):
        patch_user(_user(), _body({"op": "replace", "path": long_path, "value": "x"}))
    with pytest.raises(InvalidPath):
        patch_user(_user(), _body({"op": "replace", "value": {long_path: "x"}}))
    with pytest.raises(InvalidPath):
        patch_group(_group(), _body({"op": "remove", "path": long_path}))
    keys = {f"name.givenName{i}": "x" for i in range(MAX_VALUE_KEYS + 1)}
    with pytest.raises(InvalidValue, match=f"at most {MAX_VALUE_KEYS}"):
        patch_user(_user(), _body({"op": "replace", "value": keys}))
    one = {"op": "replace", "path": "displayName", "value": "x"}
    with pytest.raises(TooMany):
        patch_user(_user(), _body(*[one] * (MAX_USER_OPERATIONS + 1)))
    split = {f'emails[type eq "t{i}"].value': f"{i}@acme.example" for i in range(MAX_VALUE_KEYS)}
    with pytest.raises(TooMany):
        patch_user(_user(), _body({"op": "add", "value": split}, one))
