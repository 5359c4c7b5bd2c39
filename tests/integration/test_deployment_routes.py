"""A deployment's routes over the JSON API and the CLI: who may bind what, the
validation, the audit, and forward-auth answering for a bound host or prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hubgate.access import OrgRole, Principal, ResourceKind, Visibility
from hubgate.accounts import tokens, users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.config import Settings
from hubgate.db.models import AuditEvent, DeploymentRoute, Org
from hubgate.gate.bindings import MAX_ROUTES
from hubgate.orgs import resources
from hubgate.runtime import Runtime, build_runtime
from hubgate.sso import domains
from tests.conftest import PASSWORD, World, make_settings, sign_in
from tests.integration.test_cli_domains import Hubgate

ROUTES = "/api/v1/orgs/acme/resources/deployments/llama/routes"
PREFIX = "/acme/deployments/llama/"
Login = Callable[[str], TestClient]


def _seed_resources(rt: Runtime, org: Org, specs: list[tuple[ResourceKind, str]]) -> None:
    with rt.db.transaction() as db:
        found = db.merge(org)
        for kind, name in specs:
            resources.create(
                db, Actor.system(), Principal.operator(), found, kind, name, Visibility.PRIVATE
            )


def _verify_domain(rt: Runtime, org: Org, domain: str) -> None:
    with rt.db.transaction() as db:
        found = db.merge(org)
        domains.add(db, rt, Actor.system(), Principal.operator(), found, domain)
        domains.verify_by_operator(db, rt, Actor.system(), found, domain)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The host of a request comes from ``X-Original-Host``, as nginx sends it."""
    return make_settings(database_url, host_header="x-original-host")


@pytest.fixture
def acme(world: World, rt: Runtime) -> World:
    """acme (verified domain acme.example): admin@, writer@ (write), reader@ (read),
    deployment ``llama``, deployment ``mistral`` and model ``bert``; rival: its
    own admin and deployment ``llama``."""
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    world.member(org, world.user("writer@acme.test"), OrgRole.WRITE)
    world.member(org, world.user("reader@acme.test"), OrgRole.READ)
    _seed_resources(
        rt, org,
        [(ResourceKind.DEPLOYMENT, "llama"), (ResourceKind.DEPLOYMENT, "mistral"),
         (ResourceKind.MODEL, "bert")],
    )  # fmt: skip
    _verify_domain(rt, org, "acme.example")
    rival = world.org("rival", world.user("admin@rival.test"))
    _seed_resources(rt, rival, [(ResourceKind.DEPLOYMENT, "llama")])
    return world


@pytest.fixture
def login(rt: Runtime) -> Login:
    app = create_app(runtime=rt)

    def make(email: str) -> TestClient:
        client = TestClient(app)
        sign_in(client, email)
        return client

    return make


def _routes(rt: Runtime) -> list[tuple[str | None, str | None]]:
    with rt.db.transaction() as db:
        rows = db.scalars(select(DeploymentRoute).order_by(DeploymentRoute.id))
        return [(r.host, r.path_prefix) for r in rows]


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- the JSON API --------------------------------------------------------------


def test_a_writer_binds_a_prefix_an_admin_a_host_and_it_is_audited(
    login: Login, acme: World, rt: Runtime
) -> None:
    by_prefix = login("writer@acme.test").post(ROUTES, json={"path_prefix": PREFIX})
    by_host = login("admin@acme.test").post(
        ROUTES, json={"host": "LLM.Acme.Example.", "path_prefix": "/v1/"}
    )

    assert by_prefix.status_code == 201, by_prefix.text
    assert by_host.status_code == 201, by_host.text
    listed = login("reader@acme.test").get(ROUTES).json()
    assert [(r["org"], r["deployment"], r["host"], r["path_prefix"]) for r in listed] == [
        ("acme", "llama", None, PREFIX),
        ("acme", "llama", "llm.acme.example", "/v1/"),
    ]
    events = _events(rt, "deployment.route_bound")
    assert [(e.actor, e.target) for e in events] == [
        ("writer@acme.test", "deployment/llama"), ("admin@acme.test", "deployment/llama"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("reader@acme.test", {"path_prefix": PREFIX}, 403, "insufficient_role"),
        ("admin@rival.test", {"path_prefix": PREFIX}, 404, "not_found"),
        ("writer@acme.test", {"host": "llm.acme.example"}, 403, "insufficient_role"),
        ("writer@acme.test", {"host": "llm.acme.example", "path_prefix": "/v1/chat/"}, 403,
         "insufficient_role"),
        ("admin@acme.test", {"host": "llm.rival.example"}, 403, "host_not_verified"),
        ("admin@acme.test", {"host": "acme.example.evil.example"}, 403, "host_not_verified"),
        ("admin@acme.test", {"host": "notacme.example"}, 403, "host_not_verified"),
        ("writer@acme.test", {"path_prefix": "/rival/deployments/llama/"}, 403,
         "prefix_outside_deployment"),
        ("writer@acme.test", {"path_prefix": "/acme/deployments/mistral/"}, 403,
         "prefix_outside_deployment"),
        ("writer@acme.test", {"path_prefix": "/acme/deployments/llamax/"}, 403,
         "prefix_outside_deployment"),
        ("writer@acme.test", {"path_prefix": "/acme/models/bert/"}, 403,
         "prefix_outside_deployment"),
        ("writer@acme.test", {"path_prefix": "/acme/"}, 403, "prefix_outside_deployment"),
        ("writer@acme.test", {"path_prefix": "/v1/"}, 403, "prefix_outside_deployment"),
        ("writer@acme.test", {}, 400, "route_empty"),
        ("writer@acme.test", {"host": None, "path_prefix": None}, 400, "route_empty"),
        ("writer@acme.test", {"host": "llm.acme.example:8443"}, 400, "invalid_host"),
        ("writer@acme.test", {"host": "https://llm.acme.example"}, 400, "invalid_host"),
        ("writer@acme.test", {"path_prefix": "/acme/deployments/llama"}, 400,
         "invalid_path_prefix"),
        ("writer@acme.test", {"path_prefix": "/acme/../rival/"}, 400, "invalid_path_prefix"),
        ("writer@acme.test", {"path_prefix": "/acme/%2e%2e/"}, 400, "invalid_path_prefix"),
        ("writer@acme.test", {"path_prefix": "/acme\\x/"}, 400, "invalid_path_prefix"),
        ("writer@acme.test", {"host": "x" * 300}, 400, "invalid_request"),
        ("writer@acme.test", {"path_prefix": "/acme/" + "a" * 300 + "/"}, 400,
         "invalid_request"),
        ("writer@acme.test", {"path_prefix": "/acme/\x00/"}, 400, "invalid_request"),
        ("writer@acme.test", {"path_prefix": PREFIX, "upstream": "x"}, 400, "invalid_request"),
        ("writer@acme.test", {"path_prefix": ["/acme/"]}, 400, "invalid_request"),
    ],
)  # fmt: skip
def test_refused_bindings_change_nothing(
    login: Login, acme: World, rt: Runtime, who: str, body: object, status: int, code: str
) -> None:
    response = login(who).post(ROUTES, json=body)

    assert (response.status_code, response.json()["error"]) == (status, code)
    assert _routes(rt) == []
    assert _events(rt, "deployment.route_bound") == []


def test_only_deployments_take_routes(login: Login, acme: World) -> None:
    response = login("admin@acme.test").post(
        "/api/v1/orgs/acme/resources/deployments/bert/routes", json={"path_prefix": "/acme/b/"}
    )
    assert response.status_code == 404


def test_a_host_and_prefix_lead_to_one_deployment_only(
    login: Login, acme: World, rt: Runtime
) -> None:
    admin = login("admin@acme.test")
    mistral = ROUTES.replace("llama", "mistral")
    assert admin.post(ROUTES, json={"path_prefix": PREFIX}).status_code == 201
    assert admin.post(ROUTES, json={"host": "llm.acme.example"}).status_code == 201
    assert admin.post(ROUTES, json={"host": "llm.acme.example", "path_prefix": "/v1/"})

    answers = [
        admin.post(url, json=body)
        for url, body in (
            (ROUTES, {"path_prefix": PREFIX}),
            (mistral, {"host": "llm.acme.example"}),
            (mistral, {"host": "LLM.acme.example.", "path_prefix": "/v1/"}),
        )
    ]

    assert [(a.status_code, a.json()["error"]) for a in answers] == [(409, "route_taken")] * 3
    assert admin.post(mistral, json={"host": "llm.acme.example", "path_prefix": "/v2/"})
    assert len(_routes(rt)) == 4


def test_a_deployment_has_a_bounded_number_of_routes(login: Login, acme: World) -> None:
    admin = login("admin@acme.test")
    for n in range(MAX_ROUTES):
        assert admin.post(ROUTES, json={"path_prefix": f"{PREFIX}r{n}/"}).status_code == 201
    refused = admin.post(ROUTES, json={"path_prefix": f"{PREFIX}one-more/"})
    assert (refused.status_code, refused.json()["error"]) == (409, "too_many_routes")


def test_unbinding_needs_deploy_and_the_route_of_that_deployment(
    login: Login, acme: World, rt: Runtime
) -> None:
    writer = login("writer@acme.test")
    route_id = writer.post(ROUTES, json={"path_prefix": PREFIX}).json()["id"]

    by_reader = login("reader@acme.test").delete(f"{ROUTES}/{route_id}")
    on_other = writer.delete(f"{ROUTES.replace('llama', 'mistral')}/{route_id}")
    out_of_range = writer.delete(f"{ROUTES}/{2**40}")
    assert (by_reader.status_code, on_other.status_code) == (403, 404)
    assert out_of_range.status_code in {400, 422}
    assert _routes(rt) == [(None, PREFIX)]

    assert writer.delete(f"{ROUTES}/{route_id}").status_code == 204
    assert _routes(rt) == []
    [event] = _events(rt, "deployment.route_unbound")
    assert event.target == "deployment/llama" and f'"route_id": {route_id}' in event.data


def test_deleting_the_deployment_deletes_its_routes(login: Login, acme: World, rt: Runtime) -> None:
    admin = login("admin@acme.test")
    assert admin.post(ROUTES, json={"path_prefix": PREFIX}).status_code == 201
    assert admin.delete("/api/v1/orgs/acme/resources/deployments/llama").status_code == 204
    with rt.db.transaction() as db:
        assert db.scalar(select(func.count()).select_from(DeploymentRoute)) == 0


# -- forward-auth ----------------------------------------------------------------


def _token(rt: Runtime, user_id: int, scopes: str) -> dict[str, str]:
    with rt.db.transaction() as db:
        new = tokens.issue(db, user_id=user_id, name="t", scopes=scopes, expires_at=None)
    return {"authorization": f"Bearer {new.secret}"}


def _check(client: TestClient, uri: str, headers: dict[str, str]) -> tuple[int, str]:
    """Status, and the action allowed or the reason refused."""
    response = client.get(
        "/auth/check", headers={"x-original-uri": uri, "x-original-method": "POST", **headers}
    )
    answer = response.headers.get("x-hubgate-action") or response.headers.get("x-hubgate-reason")
    return response.status_code, answer or ""


def test_forward_auth_answers_for_bound_hosts_and_prefixes(
    login: Login, acme: World, rt: Runtime, client: TestClient
) -> None:
    admin = login("admin@acme.test")
    admin.post(ROUTES, json={"path_prefix": PREFIX})
    admin.post(ROUTES, json={"host": "llm.acme.example"})
    member = _token(rt, _user_id(rt, "writer@acme.test"), "write")
    read_only = _token(rt, _user_id(rt, "writer@acme.test"), "read")
    outsider = _token(rt, _user_id(rt, "admin@rival.test"), "write")
    original = {"x-original-host": "llm.acme.example"}

    assert [
        _check(client, f"{PREFIX}v1/chat/completions", member),
        _check(client, f"{PREFIX}tokenize", member),  # unbound, a POST there is "deploy"
        _check(client, "/v1/models", member | original),
        _check(client, "/v1/models", member | {"x-original-host": "LLM.acme.example:443"}),
        _check(client, "/v1/models", member | {"x-forwarded-host": "llm.acme.example"}),
        _check(client, "/v1/models", member | {"x-original-host": "llm.rival.example"}),
        _check(client, f"{PREFIX}../x/v1", member),
        _check(client, f"{PREFIX}health", {}),
        _check(client, f"{PREFIX}health", read_only),
        _check(client, f"{PREFIX}health", outsider),
    ] == [
        (200, "call"),
        (200, "call"),
        (200, "call"),
        (200, "call"),
        (403, "route_unmapped"),
        (403, "route_unmapped"),
        (403, "route_unmapped"),
        (401, "sign_in_required"),
        (403, "scope_insufficient"),
        (403, "not_member"),
    ]


def test_without_a_host_header_setting_host_bindings_are_ignored(
    login: Login, acme: World, rt: Runtime, database_url: str
) -> None:
    """A client may send X-Original-Host and X-Forwarded-Host itself; unless the
    operator names the one its proxy sets, no host binding decides."""
    login("admin@acme.test").post(ROUTES, json={"host": "llm.acme.example"})
    member = _token(rt, _user_id(rt, "writer@acme.test"), "write")
    unset = build_runtime(make_settings(database_url))
    try:
        with TestClient(create_app(runtime=unset)) as client:
            answers = [
                _check(client, "/v1/models", member | {name: "llm.acme.example"})
                for name in ("x-original-host", "x-forwarded-host")
            ]
    finally:
        unset.db.engine.dispose()

    assert answers == [(403, "route_unmapped")] * 2


def _user_id(rt: Runtime, email: str) -> int:
    with rt.db.transaction() as db:
        user = users.find_by_email(db, email)
        assert user is not None
        return user.id


# -- the CLI -------------------------------------------------------------------


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hubgate:
    """The CLI with org acme (admin alice), its deployment llama and model bert."""
    monkeypatch.chdir(tmp_path)
    run = Hubgate(database_url)
    run("user", "create", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    run("org", "create", "acme", "--admin", "alice@example.com")
    run("resource", "create", "--org", "acme", "deployment", "llama")
    run("resource", "create", "--org", "acme", "model", "bert")
    return run


def test_the_operator_binds_lists_and_unbinds_from_the_cli(cli: Hubgate, rt: Runtime) -> None:
    """The operator vouches for hosts as it does for domains: no verified domain needed."""
    bound = cli.json("deployment", "bind", "--org", "acme", "llama", "--host", "LLM.Acme.Example")
    cli("deployment", "bind", "--org", "acme", "llama", "--prefix", PREFIX)

    listed = cli.json("deployment", "routes", "--org", "acme", "llama")
    text = cli("deployment", "routes", "--org", "acme", "llama").stdout
    assert [(r["host"], r["path_prefix"]) for r in listed] == [
        ("llm.acme.example", None), (None, PREFIX),
    ]  # fmt: skip
    assert "llm.acme.example" in text and PREFIX in text
    cli("deployment", "unbind", "--org", "acme", "llama", str(bound["id"]))
    assert _routes(rt) == [(None, PREFIX)]
    actors = {e.actor for e in _events(rt, "deployment.route_bound")}
    assert actors == {"operator:cli"} and len(_events(rt, "deployment.route_unbound")) == 1


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["llama"], "route_empty"),
        (["llama", "--prefix", "/acme/../x/"], "invalid_path_prefix"),
        (["llama", "--host", "llm.acme.example:80"], "invalid_host"),
        (["bert", "--prefix", "/acme/bert/"], "not_found"),
        (["missing", "--prefix", "/acme/missing/"], "not_found"),
    ],
)
def test_the_cli_refuses_bad_bindings_with_a_reason(
    cli: Hubgate, rt: Runtime, args: list[str], code: str
) -> None:
    result = cli("deployment", "bind", "--org", "acme", *args, ok=False)

    assert result.exit_code == 1 and f"error: {code}:" in result.output
    assert _routes(rt) == []


# -- the deployment's page -------------------------------------------------------


def test_the_deployment_page_shows_its_routes(login: Login, acme: World) -> None:
    writer = login("writer@acme.test")
    unbound = writer.get("/acme/deployments/llama").text
    login("admin@acme.test").post(ROUTES, json={"host": "llm.acme.example", "path_prefix": "/v1/"})
    writer.post(ROUTES, json={"path_prefix": PREFIX})

    page = login("reader@acme.test").get("/acme/deployments/llama").text

    assert "Not bound to a host or path prefix." in unbound
    assert "llm.acme.example" in page and "<code>/v1/</code>" in page
    assert f"<code>{PREFIX}</code>" in page and "any host" in page
    assert "Routes" not in login("reader@acme.test").get("/acme/models/bert").text
