"""The ``hubgate`` command driven from the outside, against a migrated database."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import click
import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import demo
from hubgate.cli import root as cli
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, Org, Resource, Team, Token
from hubgate.orgs import queries, service
from hubgate.runtime import Runtime
from hubgate.sso import connections, domains, mappings, policy
from hubgate.web.server import BoundedHttpTools
from tests.conftest import PASSWORD, StandInServer, sign_in
from tests.ports import free_port

ALICE, BOB = "alice@example.com", "bob@example.com"
_FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}


class Run(Protocol):
    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result: ...


def _runner(env: dict[str, str | None]) -> CliRunner:
    """No HUBGATE_* from the caller's shell leaks in: the test names every value."""
    return CliRunner(env={"HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None, **env})


def _check(result: Result, ok: bool) -> Result:
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def hubgate(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``hubgate ARGS`` in dev mode on the per-test database, from a folder with no .env."""
    monkeypatch.chdir(tmp_path)
    runner = _runner({"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url, **_FAST_HASHING})

    def run(*args: str, input: str | None = None, ok: bool = True) -> Result:
        return _check(runner.invoke(main, list(args), input=input), ok)

    return run


def as_json(run: Run, *args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture
def acme(hubgate: Run) -> Run:
    """``acme`` with alice (admin, password set) and bob (an account, not yet a member)."""
    hubgate("user", "create", ALICE, "--password-stdin", input=PASSWORD + "\n")
    hubgate("user", "create", BOB, "--name", "Bob")
    hubgate("org", "create", "acme", "--admin", ALICE, "--display-name", "Acme Corp")
    return hubgate


def _roles(run: Run) -> dict[str, str]:
    return {m["email"]: m["role"] for m in as_json(run, "member", "list", "--org", "acme")}


def test_user_create_prints_the_id(hubgate: Run) -> None:
    first = hubgate("user", "create", "Ann@Example.com").stdout.strip()
    created = as_json(hubgate, "user", "create", "ben@example.com", "--unverified")
    assert first.isdigit()
    assert created == {"id": int(first) + 1, "email": "ben@example.com", "verified": False}


def test_org_and_members_round_trip(acme: Run) -> None:
    assert [o["name"] for o in as_json(acme, "org", "list")] == ["acme"]
    added = as_json(acme, "member", "add", "--org", "acme", BOB, "--role", "read")
    assert added == {"org": "acme", "email": BOB, "role": "read"}
    assert _roles(acme) == {ALICE: "admin", BOB: "read"}
    as_json(acme, "member", "set-role", "--org", "acme", BOB, "--role", "contributor")
    assert _roles(acme) == {ALICE: "admin", BOB: "contributor"}
    removed = as_json(acme, "member", "remove", "--org", "acme", BOB)
    assert removed["removed"] is True
    assert _roles(acme) == {ALICE: "admin"}
    listed = as_json(acme, "org", "list")
    assert listed[0]["members"] == 1 and listed[0]["display_name"] == "Acme Corp"


def test_text_output_is_a_table(acme: Run) -> None:
    lines = acme("member", "list", "--org", "acme").stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "ROLE", "TEAMS", "SOURCE", "SIGN-IN"]
    assert lines[1].split() == [
        ALICE, "admin", "everyone:write", "set", "by", "an", "admin", "password"
    ]  # fmt: skip


def test_last_admin_is_protected_and_nothing_changes(acme: Run, rt: Runtime) -> None:
    refused = acme("member", "set-role", "--org", "acme", ALICE, "--role", "write", ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: last_admin: An organization must keep at least one active admin."
    )
    as_data = acme("member", "remove", "--org", "acme", ALICE, "--json", ok=False)
    assert as_data.exit_code == 1
    assert json.loads(as_data.stderr)["error"] == "last_admin"
    assert _roles(acme) == {ALICE: "admin"}
    with rt.db.transaction() as db:
        actions = set(db.scalars(select(AuditEvent.action)))
    assert not actions & {"member.role_changed", "member.removed"}


def test_user_mistakes_are_one_clean_line(acme: Run) -> None:
    for args, code in [
        (["member", "add", "--org", "nope", BOB], "not_found"),
        (["member", "add", "--org", "acme", "nobody@example.com"], "not_found"),
        (["user", "create", ALICE], "email_taken"),
        (["org", "create", "login", "--admin", ALICE], "name_reserved"),
        (["token", "create", "--user", ALICE, "--name", "t", "--scope", "full"], "invalid_scope"),
    ]:
        result = acme(*args, ok=False)
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"error: {code}: "), result.stderr


def test_personal_token_works_until_revoked(acme: Run, client: TestClient) -> None:
    new = as_json(acme, "token", "create", "--user", ALICE, "--name", "ci", "--scope", "read")
    assert new["kind"] == "personal" and new["scopes"] == ["read"]
    assert new["token"].startswith("hg_")
    bearer = {"Authorization": f"Bearer {new['token']}"}
    me = client.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200 and me.json()["emails"][0]["address"] == ALICE
    assert me.json()["credential"] == "personal_token"
    revoked = as_json(acme, "token", "revoke", str(new["id"]))
    assert revoked["id"] == new["id"] and revoked["revoked_at"] is not None
    refused = client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401 and refused.json()["error"] == "token_revoked"
    acme("token", "revoke", str(new["id"]))
    logged = as_json(acme, "audit", "--action", "token.revoked")
    assert [e["target"] for e in logged] == [f"token:{new['id']}"]


def test_token_text_output_is_the_secret_alone(acme: Run) -> None:
    shown = acme("token", "create", "--user", ALICE, "--name", "ci", "--scope", "write")
    assert shown.stdout.strip().startswith("hg_") and len(shown.stdout.split()) == 1
    assert "not shown again" in shown.stderr
    unknown = acme("token", "revoke", "999", ok=False)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: not_found:")


def test_password_from_stdin_signs_in(acme: Run, client: TestClient) -> None:
    sign_in(client, ALICE)
    assert client.get("/api/v1/me").json()["orgs"][0]["role"] == "admin"


def test_team_token_reaches_its_team_deployment(acme: Run, client: TestClient) -> None:
    acme("team", "create", "--org", "acme", "research")
    acme("resource", "create", "--org", "acme", "deployment", "chat", "--team", "research")
    new = as_json(
        acme, "token", "create", "--org", "acme", "--team", "research",
        "--name", "serving", "--scope", "inference", "--expires-days", "30",
    )  # fmt: skip
    assert new["kind"] == "team" and new["expires_at"] is not None
    check = client.get(
        "/auth/check",
        headers={
            "Authorization": f"Bearer {new['token']}",
            "X-Original-URI": "/acme/deployments/chat/predict",
            "X-Original-Method": "POST",
        },
    )
    assert check.status_code == 200 and check.headers["x-hubgate-action"] == "call"


def test_token_create_needs_one_target(acme: Run) -> None:
    both = acme(
        "token", "create", "--user", ALICE, "--org", "acme", "--team", "everyone",
        "--name", "t", "--scope", "read", ok=False,
    )  # fmt: skip
    assert both.exit_code == 2 and "Give either --user" in both.stderr


def test_audit_lists_the_operator_events(acme: Run) -> None:
    acme("member", "add", "--org", "acme", BOB, "--role", "write")
    acme("team", "create", "--org", "acme", "research")
    acme("team", "add-member", "--org", "acme", "research", BOB, "--role", "admin")
    events = as_json(acme, "audit")
    actions = [e["action"] for e in events]
    assert actions[:3] == ["team.member_set", "team.created", "member.added"]
    assert {"user.created", "org.created"} <= set(actions)
    assert {e["actor"] for e in events} == {"operator:cli"}
    only = as_json(acme, "audit", "--org", "acme", "--action", "member.added")
    assert [(e["action"], e["target"]) for e in only] == [("member.added", BOB)]
    assert as_json(acme, "audit", "--since", "2999-01-01") == []
    exported = acme("audit", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["action"] for line in exported] == actions
    assert len(as_json(acme, "audit", "--limit", "2")) == 2


def test_mail_outbox_shows_the_verification_mail(hubgate: Run, client: TestClient) -> None:
    signed_up = client.post(
        "/api/v1/signup", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert signed_up.status_code == 201
    mail = as_json(hubgate, "mail", "outbox", "--to", "EVE@example.com")
    assert len(mail) == 1 and mail[0]["to"] == "eve@example.com"
    assert mail[0]["subject"] == "Confirm your email address"
    assert "/verify-email?token=" in mail[0]["body"]
    assert "Subject: Confirm your email address" in hubgate("mail", "outbox").stdout


def test_unverified_user_gets_a_verification_mail(hubgate: Run) -> None:
    hubgate("user", "create", "fay@example.com", "--unverified")
    hubgate("user", "create", "gus@example.com")
    assert [m["to"] for m in as_json(hubgate, "mail", "outbox")] == ["fay@example.com"]


# -- demo --------------------------------------------------------------------


def _rows(
    rt: Runtime, name: str = "acme"
) -> tuple[dict[str, str], dict[str, tuple[str, str | None]], list[Token]]:
    with rt.db.transaction() as db:
        org = db.scalars(select(Org).where(Org.name == name)).one()
        teams = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == org.id))}
        roles = {m.email: m.role for m in queries.members_of(db, org)}
        resources = {
            f"{r.kind}/{r.name}": (r.visibility, teams.get(r.team_id) if r.team_id else None)
            for r in db.scalars(select(Resource).where(Resource.org_id == org.id))
        }
        tokens = list(db.scalars(select(Token)))
    return roles, resources, tokens


def test_demo_seed_builds_the_example_orgs(rt: Runtime, client: TestClient) -> None:
    info = demo.seed(rt, password="demo-password-1")
    roles, resources, tokens = _rows(rt)
    assert roles == {"alice@acme.test": "admin"}  # carol and dave arrive just in time
    assert resources["model/llama-mini"] == ("public", None)
    assert resources["model/secret-model"] == ("private", None)
    assert resources["dataset/eval-set"] == ("private", "research")
    assert resources["deployment/chat"] == ("private", "research")
    assert any(k.startswith("space/") and v[0] == "public" for k, v in resources.items())
    assert [(t.kind, t.scopes) for t in tokens] == [("team", "inference")]
    globex_roles, globex_resources, _ = _rows(rt, "globex")
    assert globex_roles == {"bob@globex.test": "admin", "grace@globex.test": "write"}
    assert {v[0] for v in globex_resources.values()} == {"public", "private"}

    def login(email: str) -> Any:
        client.cookies.clear()  # each person in a fresh browser
        return client.post("/api/v1/login", json={"email": email, "password": info.password})

    assert login("dan@partner.test").json()["orgs"] == []
    bob = login("bob@globex.test").json()
    assert [o["org"] for o in bob["orgs"]] == ["globex"], bob
    assert login("alice@acme.test").status_code in (401, 403)  # managed: the IdP only
    text = demo.describe(info, "http://127.0.0.1:8000")
    assert info.team_token in text and "http://127.0.0.1:8000/api/v1/docs" in text
    assert "Sign in there as alice@acme.test" in text and "NOT FOR PRODUCTION" in text


def test_demo_seed_puts_both_orgs_in_their_modes_with_active_connections(rt: Runtime) -> None:
    info = demo.seed(rt)
    with rt.db.transaction() as db:
        for name, kind, mode, domain in (
            ("acme", "saml", "managed", "acme.test"),
            ("globex", "oidc", "basic", "globex.test"),
        ):
            org = service.get_org(db, name)
            assert policy.policy_of(db, org.id).name == mode
            found = connections.of_org(db, org)
            assert [(c.kind, c.state, c.id) for c in found] == [
                (kind, "active", info.connections[name])
            ]
            listed = {d.domain: d for d in domains.list_for(db, org)}
            assert listed[domain].verified_at is not None
            assert listed[domain].connection_id == info.connections[name]
            rules = mappings.describe(db, org.id)
            assert {"attribute": "groups", "value": "hub-admins", "role": "admin"} in rules[
                "role_mappings"
            ]
        activations = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "sso.connection_activated")
        ).all()
        assert len(activations) == 2 and all('"skip_test": true' in e.data for e in activations)
    directory = demo.idp_directory(rt, info)
    entity_id, acs = connections.sp_urls(rt, info.connections["acme"])
    assert [(s.entity_id, s.acs_url) for s in directory.saml_sps] == [(entity_id, acs)]
    client = directory.client(demo.CLIENT_ID)
    assert client is not None and client.client_secret == info.idp.client_secret
    assert client.redirect_uris == (connections.redirect_uri(rt, info.connections["globex"]),)
    alice = directory.user("alice@acme.test")
    assert alice is not None and alice.password == info.password
    assert alice.groups == ("hub-admins", "ml-research")


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_demo_command_needs_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh folder, production in the environment and no secret: the demo still
    starts, with its dev IdP (a real child process, stopped when hubgate stops)."""
    served: list[uvicorn.Config] = []
    idp_port = free_port()
    monkeypatch.setattr(cli.uvicorn, "Server", partial(StandInServer, during=served.append))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hubgate-demo.db").write_text("an old demo")
    runner = _runner({"HUBGATE_ENV": "production", "HUBGATE_DATABASE_URL": None, **_FAST_HASHING})
    args = ["demo", "--port", "8123", "--idp-port", str(idp_port)]
    result = _check(runner.invoke(main, args), ok=True)
    assert "http://127.0.0.1:8123/login" in result.stdout and "Bearer hg_" in result.stdout
    assert f"http://127.0.0.1:{idp_port}/saml/metadata" in result.stdout
    assert [(c.host, c.port, c.workers, c.proxy_headers, c.log_level) for c in served] == [
        ("127.0.0.1", 8123, 1, False, "info")
    ]
    assert (tmp_path / "hubgate-demo.db").stat().st_size > 1000
    assert _closed(idp_port)
    assert runner.invoke(main, ["demo", "--port", "9", "--idp-port", "9"]).exit_code == 2


def _hidden(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {html.unescape(name): html.unescape(value) for name, value in found}


def _action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def _wait_for(url: str, child: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        assert child.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def _tour_password(log: Path) -> str:
    found = re.search(r"in hubgate and at the dev IdP: (\S+)", log.read_text())
    assert found is not None, log.read_text()
    return found.group(1)


def _alice_signs_in(hub: str, password: str) -> httpx.Client:
    """The tour's first step: email-first at /login, the dev IdP's form, the ACS."""
    browser = httpx.Client(timeout=10, follow_redirects=True)
    page = browser.get(f"{hub}/login")
    csrf = re.search(r'name="(csrf[^"]*)" value="([^"]+)"', page.text)
    assert csrf is not None
    start = browser.post(
        f"{hub}/login", data={csrf.group(1): csrf.group(2), "email": "alice@acme.test"}
    )  # follows /sso/acme/start to the dev IdP's login page
    assert start.status_code == 200 and "NOT FOR PRODUCTION" in start.text, start.text
    idp = f"{start.url.scheme}://{start.url.netloc.decode()}"
    data = {**_hidden(start.text), "login": "alice@acme.test", "password": password}
    posted = browser.post(idp + _action(start.text), data=data)
    assert posted.status_code == 200 and "SAMLResponse" in posted.text
    landed = browser.post(_action(posted.text), data=_hidden(posted.text))
    assert landed.status_code == 200 and str(landed.url) == f"{hub}/"
    return browser


_MAIN = "from hubgate.cli.root import main; main()"


@pytest.mark.slow
def test_demo_serves_hubgate_and_the_dev_idp_and_the_tour_signs_alice_in(
    tmp_path: Path,
) -> None:
    port, idp_port = free_port(), free_port()
    script = Path(sys.executable).with_name("hubgate")
    command = [str(script)] if script.exists() else [sys.executable, "-c", _MAIN]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [*command, "demo", "--port", str(port), "--idp-port", str(idp_port),
             "--db", str(tmp_path / "demo.db")],
            cwd=tmp_path, env={**env, **_FAST_HASHING}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    hub = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"http://127.0.0.1:{idp_port}/healthz", child, log)
        _wait_for(f"{hub}/healthz", child, log)
        browser = _alice_signs_in(hub, _tour_password(log))
        me = browser.get(f"{hub}/api/v1/me").json()
        browser.close()
        assert me["emails"][0]["address"] == "alice@acme.test"
        acme = [o for o in me["orgs"] if o["org"] == "acme"]
        assert acme and acme[0]["role"] == "admin" and acme[0]["sso"] == "fresh"
        assert acme[0]["teams"]["research"] == "write"
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(20)
    assert _closed(port) and _closed(idp_port), log.read_text()


# -- serve and help ----------------------------------------------------------


def test_serve_refuses_production_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.uvicorn, "run", pytest.fail)
    monkeypatch.chdir(tmp_path)
    result = _runner({"HUBGATE_ENV": "production"}).invoke(main, ["serve"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid_config: Config 'HUBGATE_SECRET_KEY'")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_serve_runs_the_app_factory(hubgate: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[object, dict[str, Any]]] = []
    folders: list[str | None] = []

    def run(app: object, **kw: Any) -> None:
        served.append((app, kw))
        folders.append(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

    monkeypatch.setattr(cli.uvicorn, "run", run)
    hubgate("serve", "--port", "9000", "--workers", "2")
    assert folders[0] and "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # set for the run only
    app, options = served[0]
    assert app == "hubgate.app:create_app"
    assert options["factory"] is True and options["workers"] == 2 and options["port"] == 9000
    assert options["proxy_headers"] is False
    assert options["http"] is BoundedHttpTools and options["h11_max_incomplete_event_size"] == 65536
    assert options["timeout_worker_healthcheck"] == 30
    hubgate("serve", "--timeout-worker-healthcheck", "90", "--max-header-bytes", "8192")
    assert served[1][1]["timeout_worker_healthcheck"] == 90
    assert served[1][1]["h11_max_incomplete_event_size"] == 8192
    assert folders[1] is None  # one worker: metrics in memory


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, (*path, name)
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


_PRINT_NO_DATA = {("serve",), ("demo",), ("dev-idp",), ("db", "upgrade")}


def test_every_command_has_help_and_data_commands_have_json(hubgate: Run) -> None:
    assert "Usage:" in hubgate("--help").stdout
    found = list(_commands(main))
    assert len(found) >= 20
    for path, command in found:
        shown = hubgate(*path, "--help").stdout
        assert f"Usage: hubgate {' '.join(path)}" in shown, path
        if not isinstance(command, click.Group) and path not in _PRINT_NO_DATA:
            assert "--json" in shown, path


def test_db_upgrade_is_idempotent(hubgate: Run) -> None:
    assert "is up to date" in hubgate("db", "upgrade").stdout


def test_every_command_group_loads_under_its_own_name() -> None:
    """The groups are imported only when named (HubgateGroup's ``lazy``): each name
    loads the command of that name, and the listing shows them all."""
    context = click.Context(main)
    names = main.list_commands(context)
    assert {"serve", "demo", "db", "user", "org", "sso", "scim", "dev-idp"} <= set(names)
    for name in names:
        command = main.get_command(context, name)
        assert command is not None and command.name == name
    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0 and "audit-stream" in listing.output


@pytest.mark.parametrize("group", ["org", "sso"])
def test_a_command_imports_only_its_own_group(group: str) -> None:
    """``hubgate org ...`` and ``hubgate sso ...`` do not pay for the SCIM models, the
    web app or the demo (a second of imports when every group loaded up front)."""
    probe = (
        "import sys\n"
        "from hubgate.cli.root import main\n"
        "try:\n"
        f"    main([{group!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['scim2_models', 'hubgate.demo', 'hubgate.app', 'hubgate.cli.scim', 'alembic']\n"
        "print('loaded:', [name for name in heavy if name in sys.modules])\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert ran.stdout.splitlines()[-1] == "loaded: []", ran.stdout
