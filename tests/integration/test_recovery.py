"""Password reset and change over HTTP and the CLI: one-time links bound to an
account and its email, no account enumeration, throttling, managed-mode refusals,
and every session ended by a new password."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hubgate.account_security import recovery
from hubgate.accounts import users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, Email, Ephemeral, OutboxMail, User, WebSession
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World, sign_in
from tests.integration.sso_world import SsoOrg, count, sso_org
from tests.integration.test_cli import _FAST_HASHING, Run, _check, _runner
from tests.integration.test_pages import HTML, _post

NEW_PASSWORD = "a brand new passphrase"
ANN = "ann@example.com"


@pytest.fixture
def ann(world: World) -> User:
    return world.user(ANN)


def _link(rt: Runtime, address: str) -> str:
    """The token of the newest reset link mailed to ``address``."""
    with rt.db.transaction() as db:
        bodies = db.scalars(
            select(OutboxMail.body)
            .where(OutboxMail.recipient == address, OutboxMail.subject.contains("Reset"))
            .order_by(OutboxMail.id.desc())
        ).all()
    assert bodies, f"no reset mail to {address}"
    match = re.search(r"/reset-password\?token=([A-Za-z0-9_-]+)", bodies[0])
    assert match
    return match.group(1)


def _request(client: TestClient, email: str) -> tuple[int, dict[str, object]]:
    answer = client.post("/api/v1/password-reset", json={"email": email})
    return answer.status_code, answer.json()


def _confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> dict[str, object]:
    answer = client.post(
        "/api/v1/password-reset/confirm", json={"token": token, "password": password}
    )
    return {"status": answer.status_code, **answer.json()}


def _mails(rt: Runtime, *where: object) -> int:
    return count(rt, OutboxMail, *where)


def _events(rt: Runtime, action: str, reason: str | None = None) -> int:
    where = [AuditEvent.action == action]
    if reason is not None:
        where.append(AuditEvent.reason == reason)
    return count(rt, AuditEvent, *where)


def _password_hash(rt: Runtime, address: str) -> str | None:
    with rt.db.transaction() as db:
        user = users.find_by_email(db, address)
        assert user is not None
        return user.password_hash


def _can_sign_in(rt: Runtime, address: str, password: str) -> bool:
    with TestClient(create_app(runtime=rt)) as fresh:
        answer = fresh.post("/api/v1/login", json={"email": address, "password": password})
        return answer.status_code == 200


def _fresh(rt: Runtime) -> TestClient:
    return TestClient(create_app(runtime=rt))


# -- the happy path -------------------------------------------------------------------


def test_a_reset_link_sets_the_password_once_and_ends_every_session(
    client: TestClient, rt: Runtime, ann: User
) -> None:
    signed_in = _fresh(rt)
    sign_in(signed_in, ANN)
    assert signed_in.get("/api/v1/me").status_code == 200
    status, body = _request(client, ANN)
    assert (status, body["message"]) == (202, recovery.NEUTRAL)
    token = _link(rt, ANN)
    assert _confirm(client, token)["status"] == 200
    assert signed_in.get("/api/v1/me").status_code == 401, "the old session ended"
    assert count(rt, WebSession) == 0, "nobody is signed in by the link"
    assert _can_sign_in(rt, ANN, NEW_PASSWORD) and not _can_sign_in(rt, ANN, PASSWORD)
    assert _mails(rt, OutboxMail.subject == "Your hubgate password was changed") == 1
    assert _events(rt, "user.password_reset") == 1
    reused = _confirm(client, token, "yet another passphrase")
    assert (reused["status"], reused["error"]) == (400, "reset_link_invalid")
    assert _can_sign_in(rt, ANN, NEW_PASSWORD)
    assert _events(rt, "user.password_reset_refused", "reset_link_invalid") == 1


def test_the_pages_walk_from_the_login_form_to_a_new_password(
    client: TestClient, rt: Runtime, ann: User
) -> None:
    login = client.post(
        "/login", data={"email": ANN, "csrf_token": "x"}, headers=HTML, follow_redirects=False
    )
    assert login.status_code == 403, "forms carry their CSRF token"
    step = _post(client, "/login", {"email": ANN}, csrf_from="/login")
    assert 'href="/forgot-password"' in step.text and "Use single sign-on" in step.text
    sent = _post(client, "/forgot-password", {"email": ANN}, csrf_from="/forgot-password")
    assert sent.status_code == 200 and "a link to choose a new" in sent.text
    page = client.get(f"/reset-password?token={_link(rt, ANN)}", headers=HTML)
    assert page.status_code == 200 and 'name="password"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    form = {"token": _link(rt, ANN), "password": NEW_PASSWORD}
    done = _post(client, "/reset-password", form, csrf_from="/forgot-password")
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=done"
    assert "Sign in with the new password" in client.get("/login?reset=done", headers=HTML).text
    assert _can_sign_in(rt, ANN, NEW_PASSWORD)


def test_a_weak_password_keeps_the_link(client: TestClient, rt: Runtime, ann: User) -> None:
    _request(client, ANN)
    weak = _confirm(client, _link(rt, ANN), "short")
    assert (weak["status"], weak["error"]) == (400, "weak_password")
    assert _confirm(client, _link(rt, ANN))["status"] == 200


# -- links that do not work -------------------------------------------------------------


def test_an_expired_link_is_refused_and_changes_nothing(
    client: TestClient, rt: Runtime, ann: User
) -> None:
    _request(client, ANN)
    with rt.db.transaction() as db:
        db.execute(update(Ephemeral).values(expires_at=rt.now() - timedelta(seconds=1)))
    before = _password_hash(rt, ANN)
    answer = _confirm(client, _link(rt, ANN))
    assert (answer["status"], answer["error"]) == (400, "reset_link_invalid")
    assert _password_hash(rt, ANN) == before
    page = client.get(f"/reset-password?token={_link(rt, ANN)}", headers=HTML)
    assert page.status_code == 400 and "reset_link_invalid" in page.text
    assert 'href="/forgot-password"' in page.text and 'name="password"' not in page.text


@pytest.mark.parametrize(
    "token", ["", "short", "a" * 129, "not a token!", "../../etc", "x" * 1000, "é" * 20]
)
def test_a_malformed_link_is_refused(
    client: TestClient, rt: Runtime, ann: User, token: str
) -> None:
    answer = _confirm(client, token)
    assert (answer["status"], answer["error"]) == (400, "reset_link_invalid")
    page = client.get("/reset-password", params={"token": token}, headers=HTML)
    assert page.status_code == 400 and "reset_link_invalid" in page.text
    assert _events(rt, "user.password_reset_refused", "reset_link_invalid") == 2


def test_a_link_works_only_for_its_account_and_address(
    client: TestClient, rt: Runtime, world: World, ann: User
) -> None:
    world.user("bob@example.com")
    with rt.db.transaction() as db:
        users.add_email(db, rt, Actor.system(), db.merge(ann), "ann@work.example")
        db.execute(update(Email).values(verified_at=rt.now()))
    _request(client, ANN)
    sign_in(client, "bob@example.com")  # another account's browser
    before = _password_hash(rt, ANN)
    answer = _confirm(client, _link(rt, ANN))
    assert (answer["status"], answer["error"]) == (400, "reset_link_invalid")
    assert _password_hash(rt, ANN) == before
    _request(_fresh(rt), "ann@work.example")
    with rt.db.transaction() as db:
        users.remove_email(db, Actor.system(), db.get_one(User, ann.id), "ann@work.example")
    gone = _confirm(_fresh(rt), _link(rt, "ann@work.example"))
    assert (gone["status"], gone["error"]) == (400, "reset_link_invalid")
    assert _password_hash(rt, ANN) == before
    assert _confirm(_fresh(rt), _link(rt, ANN))["status"] == 200, "still unspent"


# -- asking for a link --------------------------------------------------------------------


def test_unknown_and_unverified_addresses_get_the_same_answer_and_no_mail(
    client: TestClient, rt: Runtime, world: World, ann: User
) -> None:
    world.user("una@example.com", verified=False)
    mails = _mails(rt)
    known = _request(client, ANN)
    assert _mails(rt) == mails + 1
    for address in ("nobody@example.com", "una@example.com", "UNA@Example.com"):
        assert _request(client, address) == known, address
    assert _mails(rt) == mails + 1
    assert count(rt, Ephemeral, Ephemeral.purpose == recovery.RESET_PURPOSE) == 1
    bad = client.post("/api/v1/password-reset", json={"email": "not-an-email"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_email"


def test_requests_are_throttled_per_address(client: TestClient, rt: Runtime, ann: User) -> None:
    for _ in range(recovery.PER_ADDRESS):
        assert _request(_fresh(rt), ANN)[0] == 202
    mails = _mails(rt)
    status, body = _request(client, ANN)
    assert (status, body["error"]) == (429, "too_many_attempts")
    assert _mails(rt) == mails
    assert _events(rt, "user.password_reset_refused", "too_many_attempts") == 1
    page = _post(client, "/forgot-password", {"email": ANN}, csrf_from="/forgot-password")
    assert page.status_code == 429 and page.headers["retry-after"]


def test_requests_are_throttled_per_client(client: TestClient, rt: Runtime, ann: User) -> None:
    for n in range(recovery.PER_CLIENT):
        assert _request(client, f"person{n}@example.com")[0] == 202
    status, body = _request(client, ANN)
    assert (status, body["error"]) == (429, "too_many_attempts")
    assert _mails(rt) == 0


# -- managed mode ------------------------------------------------------------------------


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    org = sso_org(rt, world)
    org.set_mode("managed")
    return org


def test_managed_mode_refuses_its_domain_and_offers_sso(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    world.user("sam@acme.example")
    mails = _mails(rt)
    for address in ("sam@acme.example", "nobody@acme.example"):
        status, body = _request(client, address)
        assert (status, body["error"]) == (403, "sso_enforced")
        assert body["details"]["sso_url"] == "/sso/acme/start"
    page = _post(
        client, "/forgot-password", {"email": "sam@acme.example"}, csrf_from="/forgot-password"
    )
    assert page.status_code == 403
    assert "identity provider" in page.text and 'href="/sso/acme/start"' in page.text
    assert _mails(rt) == mails
    assert _events(rt, "user.password_reset_refused", "sso_enforced") == 3


def test_managed_mode_refuses_an_account_it_manages_without_saying_so(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    sam = world.user("sam@home.example")
    with rt.db.transaction() as db:
        db.execute(update(User).where(User.id == sam.id).values(managed_by_org_id=acme.org.id))
    mails = _mails(rt)
    assert _request(client, "sam@home.example") == _request(client, "nobody@home.example")
    assert _mails(rt) == mails
    assert _events(rt, "user.password_reset_refused", "sso_enforced") == 1


def test_a_link_mailed_before_enforcement_stops_working(
    client: TestClient, rt: Runtime, world: World
) -> None:
    world.user("sam@acme.example")
    acme = sso_org(rt, world)
    _request(client, "sam@acme.example")
    acme.set_mode("managed")
    answer = _confirm(client, _link(rt, "sam@acme.example"))
    assert (answer["status"], answer["error"]) == (403, "sso_enforced")


def test_login_offers_single_sign_on_after_enforcement_is_lifted(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    acme.set_mode("basic")
    plain = _post(client, "/login", {"email": "jit@acme.example"}, csrf_from="/login")
    assert plain.status_code == 200 and 'name="password"' in plain.text
    asked = _post(client, "/login", {"email": "jit@acme.example", "sso": "1"}, csrf_from="/login")
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/sso/acme/start?")
    elsewhere = _post(
        client, "/login", {"email": "x@nowhere.example", "sso": "1"}, csrf_from="/login"
    )
    assert elsewhere.status_code == 200 and "No single sign-on" in elsewhere.text


# -- changing the password -----------------------------------------------------------------


def test_changing_the_password_ends_the_other_sessions(
    client: TestClient, rt: Runtime, ann: User
) -> None:
    other = _fresh(rt)
    sign_in(other, ANN)
    sign_in(client, ANN)
    form = {"current_password": "wrong password!", "password": NEW_PASSWORD}
    wrong = _post(client, "/account/password", form, csrf_from="/account/security")
    assert wrong.status_code == 403 and "invalid_credentials" in wrong.text
    assert other.get("/api/v1/me").status_code == 200 and _can_sign_in(rt, ANN, PASSWORD)
    form["current_password"] = PASSWORD
    done = _post(client, "/account/password", form, csrf_from="/account/security")
    assert done.status_code == 303
    assert other.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200, "this session stays"
    assert _can_sign_in(rt, ANN, NEW_PASSWORD)
    assert _mails(rt, OutboxMail.subject == "Your hubgate password was changed") == 1
    assert _events(rt, "user.password_changed") == 1
    assert _events(rt, "user.password_change_refused", "invalid_credentials") == 1


def test_changing_the_password_over_the_api(client: TestClient, rt: Runtime, ann: User) -> None:
    body = {"current_password": PASSWORD, "password": NEW_PASSWORD}
    assert client.post("/api/v1/me/password", json=body).status_code == 401
    sign_in(client, ANN)
    no_csrf = client.post("/api/v1/me/password", json=body, headers={"x-csrf-token": ""})
    assert no_csrf.status_code == 403
    weak = client.post("/api/v1/me/password", json={**body, "password": "short"})
    assert weak.status_code == 400 and weak.json()["error"] == "weak_password"
    assert client.post("/api/v1/me/password", json=body).status_code == 204
    assert _can_sign_in(rt, ANN, NEW_PASSWORD)


# -- the operator ---------------------------------------------------------------------------


@pytest.fixture
def hubgate(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``hubgate ARGS`` on the per-test database, as in test_cli.py."""
    monkeypatch.chdir(tmp_path)
    runner = _runner({"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url, **_FAST_HASHING})

    def run(*args: str, input: str | None = None, ok: bool = True) -> Result:
        return _check(runner.invoke(main, list(args), input=input), ok)

    return run


def test_the_operator_prints_a_one_time_link(
    hubgate: Run, client: TestClient, rt: Runtime, ann: User
) -> None:
    data = json.loads(hubgate("user", "reset-link", ANN, "--json").output)
    assert data["expires_in_seconds"] == rt.settings.password_reset_seconds
    token = data["link"].split("/reset-password?token=")[1]
    assert _mails(rt) == 0, "the operator hands the link over; nothing is mailed"
    assert _confirm(client, token)["status"] == 200
    assert _confirm(client, token)["error"] == "reset_link_invalid"
    assert "/reset-password?token=" in hubgate("user", "reset-link", ANN).output
    unknown = hubgate("user", "reset-link", "nobody@example.com", ok=False)
    assert unknown.exit_code == 1 and "unknown_email" in unknown.output
    assert _events(rt, "user.password_reset_link") == 2


def test_the_operator_link_respects_managed_mode_unless_forced(
    hubgate: Run, client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    world.user("sam@acme.example")
    refused = hubgate("user", "reset-link", "sam@acme.example", ok=False)
    assert refused.exit_code == 1 and "sso_enforced" in refused.output
    assert count(rt, Ephemeral, Ephemeral.purpose == recovery.RESET_PURPOSE) == 0
    assert _events(rt, "user.password_reset_refused", "sso_enforced") == 1
    forced = json.loads(
        hubgate("user", "reset-link", "sam@acme.example", "--force", "--json").output
    )
    assert forced["link"]
    with rt.db.transaction() as db:
        event = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.password_reset_link")
        ).one()
        assert json.loads(event.data) == {"forced": True}
