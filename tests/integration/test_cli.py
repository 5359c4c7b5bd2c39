"""The ``hubgate`` command driven from the outside, against a migrated database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import click
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import cli, demo
from hubgate.cli import main
from hubgate.db.models import AuditEvent, Org, Resource, Team, TeamMembership, Token
from hubgate.orgs import queries
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, sign_in

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
    assert lines[0].split() == ["EMAIL", "ROLE", "TEAMS"]
    assert lines[1].split() == [ALICE, "admin", "everyone:write"]


def test_last_admin_is_protected_and_nothing_changes(acme: Run, rt: Runtime) -> None:
    refused = acme("member", "set-role", "--org", "acme", ALICE, "--role", "write", ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: last_admin: An organization must keep at least one admin."
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


def _rows(rt: Runtime) -> tuple[dict[str, str], dict[str, tuple[str, str | None]], list[Token]]:
    with rt.db.transaction() as db:
        org = db.scalars(select(Org).where(Org.name == "acme")).one()
        teams = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == org.id))}
        roles = {m.email: m.role for m in queries.members_of(db, org)}
        resources = {
            f"{r.kind}/{r.name}": (r.visibility, teams.get(r.team_id) if r.team_id else None)
            for r in db.scalars(select(Resource).where(Resource.org_id == org.id))
        }
        tokens = list(db.scalars(select(Token)))
    return roles, resources, tokens


def test_demo_seed_builds_the_example_org(rt: Runtime, client: TestClient) -> None:
    info = demo.seed(rt, password="demo-password-1")
    roles, resources, tokens = _rows(rt)
    assert roles == {
        "alice@acme.test": "admin",
        "bob@acme.test": "write",
        "carol@acme.test": "read",
    }
    assert resources["model/llama-mini"] == ("public", None)
    assert resources["model/secret-model"] == ("private", None)
    assert resources["dataset/eval-set"] == ("private", "research")
    assert resources["deployment/chat"] == ("private", "research")
    assert any(k.startswith("space/") and v[0] == "public" for k, v in resources.items())
    assert [(t.kind, t.scopes) for t in tokens] == [("team", "inference")]
    with rt.db.transaction() as db:
        research = db.scalars(select(Team).where(Team.name == "research")).one()
        in_team = db.scalars(
            select(TeamMembership.role).where(TeamMembership.team_id == research.id)
        )
        assert list(in_team) == ["write"]
    login = client.post(
        "/api/v1/login", json={"email": "dan@partner.test", "password": info.password}
    )
    assert login.status_code == 200 and login.json()["orgs"] == []
    text = demo.describe(info, "http://127.0.0.1:8000")
    assert info.team_token in text and "http://127.0.0.1:8000/api/v1/docs" in text


def test_demo_command_needs_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh folder, production in the environment and no secret: the demo still starts."""
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: served.append(kw))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hubgate-demo.db").write_text("an old demo")
    runner = _runner({"HUBGATE_ENV": "production", "HUBGATE_DATABASE_URL": None, **_FAST_HASHING})
    result = _check(runner.invoke(main, ["demo", "--port", "8123"]), ok=True)
    assert "http://127.0.0.1:8123/login" in result.stdout and "Bearer hg_" in result.stdout
    assert served == [
        {"host": "127.0.0.1", "port": 8123, "workers": 1, "proxy_headers": False,
         "log_level": "info"}
    ]  # fmt: skip
    assert (tmp_path / "hubgate-demo.db").stat().st_size > 1000


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
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    hubgate("serve", "--port", "9000", "--workers", "2")
    app, options = served[0]
    assert app == "hubgate.app:create_app"
    assert options["factory"] is True and options["workers"] == 2 and options["port"] == 9000
    assert options["proxy_headers"] is False


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


_PRINT_NO_DATA = {("serve",), ("demo",), ("db", "upgrade")}


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
