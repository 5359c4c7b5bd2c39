"""scim2-tester against a running hubgate (uvicorn on a migrated database): every
check of discovery, Users and Groups must be SUCCESS.

hubgate binds a SCIM User to an account through an email in one of the org's
verified domains, which a generic tester cannot guess (it makes up
``uuid@uuid.com``). So the client's description of the server is hubgate's own
published Schemas, with one amendment a real IdP's attribute mapping makes too:
``emails`` is sent, its values drawn from addresses in the org's domain.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Context, Required, ResourceType, Schema, ScimProvider
from scim2_tester import check_server
from scim2_tester.utils import CheckResult, Status

from hubgate.access import Principal
from hubgate.accounts import users
from hubgate.audit import Actor
from hubgate.operator import operator_principal
from hubgate.orgs import service
from hubgate.provisioning import tokens
from hubgate.runtime import Runtime
from hubgate.sso import domains
from tests.e2e.conftest import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOMAIN = "acme.example"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def scim_base(rt: Runtime, database_url: str) -> Iterator[tuple[str, str]]:
    """A running hubgate whose org ``acme`` verified acme.example; (base URL, token)."""
    with rt.db.transaction() as db:
        admin = users.create_user(db, rt, f"admin@{DOMAIN}", password=None, verified=True)
        org = service.create_org(db, Actor.system(), "acme", None, admin)
        domains.add(db, rt, Actor.system(), operator_principal(), org, DOMAIN)
        domains.verify_by_operator(db, rt, Actor.system(), org, DOMAIN)
        _, secret = tokens.create(db, Actor.system(), Principal.operator(), org, "scim2-tester")
    with running_server(database_url) as base_url:
        yield f"{base_url}/scim/v2/acme", secret


def _published(http: httpx2.Client, endpoint: str, model: type) -> list:  # type: ignore[type-arg]
    answer = http.get(endpoint)
    assert answer.status_code == 200, answer.text
    return [
        model.model_validate(item, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        for item in answer.json()["Resources"]
    ]


def _with_org_emails(schemas: list[Schema]) -> list[Schema]:
    """The User schema as an IdP mapping fills it: emails always, in acme.example
    (a pool of a million; with 20,000, two of the tester's Users once drew the same one)."""
    pool = [f"tester-{index:07d}@{DOMAIN}" for index in range(1_000_000)]
    for schema in schemas:
        for attribute in schema.attributes or [] if schema.id == USER_URN else []:
            if attribute.name == "emails":
                attribute.required = Required.true
                for sub in attribute.sub_attributes or []:
                    if sub.name == "value":
                        sub.required, sub.canonical_values = Required.true, pool
    return schemas


def _describe(result: CheckResult) -> str:
    return f"{result.status.name} {result.resource_type or '-'} {result.title}: {result.reason}"


def test_every_check_succeeds(scim_base: tuple[str, str]) -> None:
    base_url, secret = scim_base
    with httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    ) as http:
        schemas = _with_org_emails(_published(http, "Schemas", Schema))
        kinds = _published(http, "ResourceTypes", ResourceType)
        client = SyncSCIMClient(http, provider=ScimProvider.from_discovery(schemas, kinds))
        results = check_server(client)
    failures = [_describe(r) for r in results if r.status is not Status.SUCCESS]
    tested = {r.resource_type for r in results}
    assert {"User", "Group"} <= tested, tested
    assert len(results) > 100, [_describe(r) for r in results]
    assert not failures, "\n".join(failures)
