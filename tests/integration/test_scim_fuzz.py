"""Hostile input to the SCIM endpoints never answers 500: random JSON bodies for
creation, replacement, PATCH and search, random filters, paths and parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubgate.runtime import Runtime
from tests.conftest import World
from tests.integration.sso_world import sso_org
from tests.integration.test_scim import MEDIA, PATCH_OP, Scim, scim_for, user_body

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_NAMES = st.sampled_from(
    ["userName", "emails", "active", "name", "name.givenName", "members", "displayName", "id",
     "meta", "groups", "roles", 'emails[type eq "work"].value', 'members[value eq "x"]', "externalId",
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "", "[", "a.b.c"]
)  # fmt: skip
_OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "Add", "Remove", "Replace", "move", 1])},
    optional={"path": _NAMES | st.text(max_size=30), "value": _JSON},
)
_FILTER = st.lists(
    st.sampled_from(['userName', 'eq', 'ne', 'co', 'pr', '"x"', "(", ")", "and", "or", "not", "[",
                     "]", "emails", ".value", "true", "null", "1", 'displayName', "members", " "]),
    max_size=15,
).map(" ".join) | st.text(max_size=40)  # fmt: skip


@pytest.fixture
def seeded(rt: Runtime, client: TestClient, world: World) -> tuple[Scim, str, str]:
    """Built once per test (Hypothesis runs every example against the same one)."""
    sso_org(rt, world)
    scim = scim_for(rt, client, "acme")
    uid = scim.create_user("ada@acme.example")["id"]
    return scim, uid, scim.create_group("Eng", uid)["id"]


def _never_500(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400 and answer.content:
        assert answer.headers["content-type"].startswith(MEDIA), answer.text


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=_JSON | st.dictionaries(_NAMES, _JSON, max_size=6),
    operations=st.lists(_OPERATION, max_size=4),
    text=_FILTER,
    start=st.integers(-5, 10**12),
    count=st.integers(-5, 10**12),
)
def test_nothing_answers_500(
    seeded: tuple[Scim, str, str], body: Any, operations: list[Any], text: str, start: int,
    count: int,
) -> None:  # fmt: skip
    scim, uid, gid = seeded
    merged = {**user_body("ada@acme.example"), **body} if isinstance(body, dict) else body
    for method, path in (("POST", "/Users"), ("PUT", f"/Users/{uid}"), ("POST", "/Groups"),
                         ("PUT", f"/Groups/{gid}"), ("POST", "/.search")):  # fmt: skip
        _never_500(scim.call(method, path, merged))
    patch = {"schemas": [PATCH_OP], "Operations": operations}
    for path in (f"/Users/{uid}", f"/Groups/{gid}"):
        _never_500(scim.call("PATCH", path, patch))
    query = {"filter": text, "startIndex": str(start), "count": str(count), "sortBy": text[:10]}
    for path in ("/Users", "/Groups"):
        headers = {"authorization": f"Bearer {scim.secret}"}
        _never_500(scim.client.get(f"/scim/v2/acme{path}", params=query, headers=headers))
    _never_500(
        scim.call("POST", "/Users/.search", {"filter": text, "count": count, "sortBy": text})
    )
    _never_500(scim.call("GET", f"/Users/{json.dumps(text)[:40]}"))
