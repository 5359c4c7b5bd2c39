"""Schemathesis over the OpenAPI spec: no generated input may produce a 500.

Each example is sent with a fresh write-scoped token of an org admin (a generated
``DELETE /me/tokens/{id}`` may revoke the previous one), so the authenticated
paths are exercised; the test also checks that most calls got past
authentication, so it cannot quietly fuzz nothing but the 401 path.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from hubgate.access import OrgRole
from hubgate.accounts import tokens
from hubgate.app import create_app
from hubgate.db.models import User
from hubgate.runtime import Runtime
from tests.conftest import World


def _seed(world: World) -> User:
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    world.member(org, world.user("member@acme.test"), OrgRole.WRITE)
    return admin


def _fresh_token(rt: Runtime, user_id: int) -> str:
    with rt.db.transaction() as db:
        return tokens.issue(
            db, user_id=user_id, name="fuzz", scopes="read write", expires_at=None
        ).secret


def test_no_input_produces_a_server_error(rt: Runtime, world: World) -> None:
    admin = _seed(world)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(runtime=rt))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    statuses: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def call(case: Any) -> None:
            headers = {"authorization": f"Bearer {_fresh_token(rt, admin.id)}"}
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        call()
    assert statuses[401] < sum(statuses.values()) / 4, statuses
