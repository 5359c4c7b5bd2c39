"""IdP certificates that never expire unnoticed: each certificate's expiry on the
API, CLI and pages; a banner, one mail per threshold and an audit event for the
org's admins; a Prometheus gauge; and a sign-in refusal that names the expiry.

Each test gives the connection an IdP certificate with a chosen notAfter (made
with the x509 builder), relative to the real clock the app runs on."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import jobs
from hubgate.access import OrgRole
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, OutboxMail, SsoCertificateNotice, SsoConnection
from hubgate.runtime import Runtime
from hubgate.sso import certificate_notices
from hubgate.sso.certificate_expiry import read_certificate
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, count, sso_org
from tests.integration.test_saml_flow import idp_metadata
from tests.security.saml_forge import Credential, Keys, make_credential, session_keys

HTML = {"accept": "text/html"}
GAUGE = "hubgate_sso_certificate_expiry_timestamp_seconds"


@cache
def credential(days: int) -> Credential:
    """An IdP key whose certificate expires ``days`` from now (negative: expired);
    cached per test session, as RSA generation is slow."""
    now = datetime.now(UTC).replace(microsecond=0)
    return make_credential(f"idp expiring {days}", not_after=now + timedelta(days=days, hours=1))


def keys_for(days: int) -> Keys:
    return replace(session_keys(), idp=credential(days))


def org_with(rt: Runtime, world: World, *days: int) -> SsoOrg:
    """acme, its admin and a second admin, an active SAML connection whose IdP
    certificates expire in ``days`` (the first from the metadata, the rest added)."""
    acme = sso_org(rt, world, metadata=idp_metadata(credential(days[0]).cert_pem))
    world.member(acme.org, world.user("second@acme.example"), OrgRole.ADMIN)
    world.member(acme.org, world.user("writer@acme.example"), OrgRole.WRITE)
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, acme.connection_id)
        settings = json.loads(row.settings)
        settings["idp_certificates"] += [credential(d).cert_pem for d in days[1:]]
        row.settings = json.dumps(settings)
    return acme


def fingerprint(days: int) -> str:
    found = read_certificate(credential(days).cert_pem)
    assert found is not None
    return found.fingerprint


def outbox(rt: Runtime) -> list[OutboxMail]:
    with rt.db.transaction() as db:
        rows = list(db.scalars(select(OutboxMail).order_by(OutboxMail.recipient)))
        db.expunge_all()
    return rows


def events(rt: Runtime, *actions: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        rows = list(db.scalars(select(AuditEvent).where(AuditEvent.action.in_(actions))))
        db.expunge_all()
    return rows


def run_twice(rt: Runtime) -> int:
    """Run the job as two instances would; how many notices exist after."""
    jobs.warn_certificates(rt)
    assert jobs.warn_certificates(rt) == 0
    return count(rt, SsoCertificateNotice)


def banner(client: TestClient, path: str = "/acme") -> str:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text[:300]
    start = page.text.find('id="certificate-expiry"')
    return "" if start < 0 else page.text[start : page.text.index("</section>", start)]


def gauge(client: TestClient) -> dict[str, float]:
    """The gauge's samples by connection label, as scraped from /metrics."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(GAUGE + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('connection="')[1].split('"')[0]] = float(value)
    return found


def test_ten_days_left_shows_the_banner_exposes_the_gauge_and_mails_the_admins_once(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, 10)
    sign_in(client, "admin@acme.example")
    shown = banner(client)
    assert "expires in 10 days" in shown and "/acme/sso" in shown
    assert "expires in 10 days" in banner(client, "/acme/members")
    not_after = read_certificate(credential(10).cert_pem)
    assert not_after is not None
    assert gauge(client) == {str(acme.connection_id): not_after.not_after.timestamp()}

    # Two instances (two runs of the job on one database): the second finds it sent.
    # (The app's own worker ran the job at start-up too, maybe after the org was made.)
    assert run_twice(rt) == 1
    mails = outbox(rt)
    assert [m.recipient for m in mails] == ["admin@acme.example", "second@acme.example"]
    assert "expires in 10 days" in mails[0].subject and fingerprint(10) in mails[0].body
    (event,) = events(rt, "sso.certificate_expiring", "sso.certificate_expired")
    data = json.loads(event.data)
    assert event.action == "sso.certificate_expiring"
    assert event.target == f"connection:{acme.connection_id}" and event.org_id == acme.org.id
    assert data["fingerprint"] == fingerprint(10) and data["threshold"] == "30_days"
    assert data["not_after"] == not_after.not_after.isoformat()


def test_members_who_are_not_admins_see_no_banner(
    client: TestClient, rt: Runtime, world: World
) -> None:
    org_with(rt, world, 10)
    sign_in(client, "writer@acme.example")
    assert banner(client) == ""


def test_thirty_days_seven_days_and_expired_each_mail_once(
    client: TestClient, rt: Runtime, world: World
) -> None:
    """One certificate over its last 25 days: the 30-day notice now, the 7-day one
    20 days later, the expired one after notAfter; each sent once however often the
    job runs."""
    acme = org_with(rt, world, 25)
    sign_in(client, "admin@acme.example")
    assert "expires in 25 days" in banner(client)
    now = rt.now()
    for later in (now, now + timedelta(days=1), now + timedelta(days=20), now + timedelta(days=26)):
        certificate_notices.send_due(rt.db, rt.mailer, rt.settings.base_url, later)
        certificate_notices.send_due(rt.db, rt.mailer, rt.settings.base_url, later)
    with rt.db.transaction() as db:
        notices = db.execute(
            select(SsoCertificateNotice.connection_id, SsoCertificateNotice.threshold)
            .order_by(SsoCertificateNotice.sent_at)
        ).all()  # fmt: skip
    assert [tuple(n) for n in notices] == [
        (acme.connection_id, "30_days"), (acme.connection_id, "7_days"),
        (acme.connection_id, "expired"),
    ]  # fmt: skip
    subjects = sorted({m.subject for m in outbox(rt)})
    assert len(outbox(rt)) == 6 and len(subjects) == 3
    assert any("in 25 days" in s for s in subjects) and any("in 5 days" in s for s in subjects)
    actions = [e.action for e in events(rt, "sso.certificate_expiring", "sso.certificate_expired")]
    assert sorted(actions) == ["sso.certificate_expired", *["sso.certificate_expiring"] * 2]


def test_an_expired_certificate_mails_expired_and_the_gauge_is_in_the_past(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, -3)
    assert run_twice(rt) == 1
    (event,) = events(rt, "sso.certificate_expiring", "sso.certificate_expired")
    assert event.action == "sso.certificate_expired"
    assert "expired (expired 2 days ago)" in outbox(rt)[0].subject
    sign_in(client, "admin@acme.example")
    assert "has expired" in banner(client) and "Nobody can sign in" in banner(client)
    assert gauge(client)[str(acme.connection_id)] < datetime.now(UTC).timestamp()


def test_a_rollover_to_a_certificate_valid_longer_silences_the_alarm(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, 10, 400)
    assert jobs.warn_certificates(rt) == 0 and outbox(rt) == []
    sign_in(client, "admin@acme.example")
    assert banner(client) == ""
    far = read_certificate(credential(400).cert_pem)
    assert far is not None
    assert gauge(client) == {str(acme.connection_id): far.not_after.timestamp()}


def test_an_inactive_connection_raises_no_alarm(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, 10)
    with rt.db.transaction() as db:
        db.get_one(SsoConnection, acme.connection_id).state = "inactive"
    assert jobs.warn_certificates(rt) == 0
    assert gauge(client) == {}


def test_the_api_the_pages_and_the_setup_portal_show_each_expiry(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, 10, 400)
    sign_in(client, "admin@acme.example")
    (shown,) = client.get("/api/v1/orgs/acme/sso/connections").json()
    idp = [c for c in shown["certificates"] if c["use"] == "idp_signing"]
    assert [(c["fingerprint_sha256"], c["days_left"]) for c in idp] == [
        (fingerprint(10), 10), (fingerprint(400), 400),
    ]  # fmt: skip
    assert idp[0]["expiry"] == "in 10 days" and not idp[0]["expired"]
    assert [c["use"] for c in shown["certificates"]][-1] == "sp"
    assert shown["certificate_alarm"] is None
    page = client.get("/acme/sso", headers=HTML).text
    assert "in 10 days" in page and "in 400 days" in page and fingerprint(10)[:16] in page
    portal = _portal_pages(client, rt, acme)
    assert all("in 10 days" in text and "in 400 days" in text for text in portal)


def _portal_pages(client: TestClient, rt: Runtime, acme: SsoOrg) -> list[str]:
    from hubgate.access import Principal
    from hubgate.audit import Actor
    from hubgate.sso import setup

    with rt.db.transaction() as db:
        _row, key = setup.create(
            db, rt, Actor.system(), Principal.operator(), db.merge(acme.org), "it@acme.example",
            setup.DEFAULT_TTL,
        )  # fmt: skip
    home = client.get(f"/setup/{key}", headers=HTML)
    one = client.get(f"/setup/{key}/connections/{acme.connection_id}", headers=HTML)
    assert home.status_code == one.status_code == 200
    return [home.text, one.text]


def test_the_cli_lists_the_expiry(
    rt: Runtime, world: World, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_with(rt, world, 10)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url})
    listed = runner.invoke(main, ["sso", "connection", "list", "--org", "acme"])
    assert listed.exit_code == 0, listed.output
    assert "idp certificate expires" in listed.stdout and "(in 10 days)" in listed.stdout
    as_json = runner.invoke(main, ["sso", "connection", "list", "--org", "acme", "--json"])
    (row,) = json.loads(as_json.stdout)
    assert row["certificate_alarm"] == "30_days"
    assert row["certificates"][0]["fingerprint_sha256"] == fingerprint(10)


def _post_html(client: TestClient, acme: SsoOrg, keys: Keys) -> Any:
    request_id, relay_state = acme.start(client)
    answer = acme.answer(request_id, keys=keys, name_id="ann@acme.example")
    return client.post(
        f"/sso/saml/{acme.connection_id}/acs",
        data={"SAMLResponse": answer, "RelayState": relay_state}, headers=HTML,
    )  # fmt: skip


def test_a_sign_in_with_only_an_expired_certificate_is_refused_as_such(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, -3)
    page = _post_html(client, acme, keys_for(-3))
    assert page.status_code == 400
    assert "idp_certificate_expired" in page.text and "has expired" in page.text
    trace = page.headers["x-trace-id"]
    assert trace in page.text
    (refused,) = events(rt, "sso.login_refused")
    assert (refused.reason, refused.trace_id) == ("idp_certificate_expired", trace)
    assert count(rt, SsoCertificateNotice) == 0  # the job, not a sign-in, sends notices


def test_a_response_signed_with_the_expired_one_of_two_is_refused_as_expired(
    client: TestClient, rt: Runtime, world: World
) -> None:
    """After a rollover, the IdP must sign with the new certificate: a response
    signed with the old, expired one is refused, by name."""
    acme = org_with(rt, world, -3, 400)
    acme.set_mode("managed")
    assert "idp_certificate_expired" in _post_html(client, acme, keys_for(-3)).text
    signed_new = _post_html(client, acme, keys_for(400))
    assert signed_new.status_code in (200, 303), signed_new.text[:300]


def test_once_every_certificate_has_expired_any_signature_is_refused_as_expired(
    client: TestClient, rt: Runtime, world: World
) -> None:
    """The IdP most likely signs with a new certificate hubgate was never given."""
    acme = org_with(rt, world, -3)
    page = _post_html(client, acme, keys_for(400))
    assert page.status_code == 400 and "idp_certificate_expired" in page.text


def test_a_key_that_is_not_configured_is_still_a_bad_signature(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = org_with(rt, world, -3, 400)
    page = _post_html(client, acme, replace(session_keys(), idp=session_keys().attacker))
    assert page.status_code == 400 and "saml_signature_invalid" in page.text
