"""SCIM documents (RFC 7643) parsed through scim2-models and rendered from the plain
values a store gives back (:mod:`hubgate.scim.documents`), with no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hubgate.scim import documents
from hubgate.scim.documents import Email, GroupRecord, Ref, UserRecord
from hubgate.scim.errors import InvalidSyntax, PreconditionFailed

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE = "https://hub.example/scim/v2/acme"
CREATED, CHANGED = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC)


def _stored(**body: object) -> UserRecord:
    """A User as a store keeps it: the parsed body's attributes, then a record."""
    attributes = documents.stored_user(documents.parse_user({"schemas": [USER], **body}))
    return UserRecord("u-1", attributes, [Ref("g-1", "eng")], CREATED, CHANGED, 3)


def test_a_user_renders_with_meta_and_groups() -> None:
    rendered = documents.user_document(_stored(userName="ada", active=True), BASE)
    assert rendered["id"] == "u-1" and rendered["userName"] == "ada"
    assert rendered["meta"] == {
        "resourceType": "User", "created": "2024-01-02T00:00:00Z",
        "lastModified": "2024-03-04T00:00:00Z", "location": f"{BASE}/Users/u-1",
        "version": 'W/"3"',
    }  # fmt: skip
    assert rendered["groups"] == [{"value": "g-1", "display": "eng", "$ref": f"{BASE}/Groups/g-1"}]


def test_access_never_comes_from_user_attributes() -> None:
    """Roles, entitlements and the rest are dropped on the way in (DESIGN.md)."""
    record = _stored(userName="ada", roles=[{"value": "admin"}], groups=[{"value": "g-9"}])
    rendered = documents.user_document(record, BASE)
    assert "roles" not in rendered and rendered["groups"][0]["value"] == "g-1"


def test_a_group_renders_its_members_as_users() -> None:
    record = GroupRecord("g-1", "eng", "ext", [Ref("u-1", None)], CREATED, CHANGED, 1)
    rendered = documents.group_document(record, BASE)
    assert rendered["displayName"] == "eng" and rendered["externalId"] == "ext"
    assert rendered["members"] == [{"value": "u-1", "$ref": f"{BASE}/Users/u-1", "type": "User"}]
    assert rendered["meta"]["location"] == f"{BASE}/Groups/g-1"


def test_emails_keep_value_type_and_primary() -> None:
    user = documents.parse_user({
        "schemas": [USER], "userName": "ada",
        "emails": [{"value": "Ada@Acme.example", "type": "work", "primary": True},
                   {"value": " ada@home.example\t"}],
    })  # fmt: skip
    assert documents.emails_of(user) == [
        Email("Ada@Acme.example", "work", True),  # as sent: the store judges addresses
        Email("ada@home.example", "", False),  # white space around it dropped
    ]


def test_if_match_names_the_version_or_any() -> None:
    """RFC 7644 §3.14."""
    for given in (None, "", "*", 'W/"3"', ' W/"3" '):
        documents.check_if_match(3, given)
    with pytest.raises(PreconditionFailed):
        documents.check_if_match(3, 'W/"2"')


def test_a_body_must_be_an_object() -> None:
    with pytest.raises(InvalidSyntax):
        documents.parse_user(["not", "an", "object"])
