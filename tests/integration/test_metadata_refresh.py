"""SAML metadata that refreshes itself (issue 22 item 2), with a fake IdP metadata
server in place of the network: conditional reads, a signing certificate rollover
across real sign-ins, an entity id change held for an admin, failures and their
banner, and the lease that lets one refresher alone work on a connection."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select, update

from hubgate.access import OrgRole
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SamlMetadataSource
from hubgate.errors import BadRequest, Conflict
from hubgate.runtime import Runtime
from hubgate.sso import connections, metadata_refresh
from hubgate.sso.fetch import Fetched
from hubgate.sso.saml.keys import certificate_fingerprint, new_key_pair
from tests.conftest import World, sign_in
from tests.integration.slo_world import csrf_token
from tests.integration.sso_world import SsoOrg, person, sso_org
from tests.integration.test_cli import Run, hubgate  # noqa: F401 - the fixture
from tests.integration.test_saml_flow import IDP, idp_metadata
from tests.security.saml_forge import Claims, Credential, SamlForge, session_keys

URL = "https://idp.acme.example/metadata"
HTML = {"accept": "text/html"}


@dataclass
class FakeMetadataServer:
    """Serves ``document`` with an ETag; answers 304 to a matching If-None-Match,
    or fails with ``failure`` (a reason code) when set."""

    document: bytes
    failure: str | None = None
    asked: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f'"{hash(self.document) & 0xFFFFFF:x}"'

    def __call__(self, url: str, etag: str | None, last_modified: str | None) -> Fetched | None:
        self.asked.append((url, etag))
        if self.failure is not None:
            raise BadRequest("The IdP is down.", code=self.failure)
        if etag == self.etag:
            return None
        return Fetched(self.document, self.etag, "Sun, 06 Dec 2026 10:00:00 GMT")


def metadata(
    *certificates: str, entity_id: str = IDP, sso_url: str | None = None, slo_url: str | None = None
) -> bytes:
    """The test IdP's metadata listing ``certificates``, optionally renamed or moved,
    with a Single Logout service (HTTP-Redirect) at ``slo_url`` if given."""
    root = etree.fromstring(idp_metadata(certificates[0]))
    root.set("entityID", entity_id)
    descriptor = root[0]
    for certificate in certificates[1:]:
        descriptor.insert(1, etree.fromstring(etree.tostring(descriptor[0])))
        body = "".join(line for line in certificate.splitlines() if "-----" not in line)
        next(descriptor[1].iter("{*}X509Certificate")).text = body
    sign_on = next(descriptor.iter("{*}SingleSignOnService"))
    if sso_url is not None:
        sign_on.set("Location", sso_url)
    if slo_url is not None:
        sign_on.addprevious(
            etree.Element(sign_on.tag.replace("SingleSignOn", "SingleLogout"),
                          Binding=sign_on.get("Binding"), Location=slo_url)
        )  # fmt: skip
    return etree.tostring(root)


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    """acme's active SAML connection, made from the metadata at :data:`URL`."""
    org = sso_org(rt, world)
    with rt.db.transaction() as db:
        db.add(SamlMetadataSource(connection_id=org.connection_id, url=URL, next_due_at=rt.now()))
    return org


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeMetadataServer:
    """The IdP's metadata server, also behind the page's, the API's and the CLI's refresh."""
    fake = FakeMetadataServer(metadata(session_keys().idp.cert_pem))
    monkeypatch.setattr(metadata_refresh, "network_fetcher", lambda rt: fake)
    return fake


def refresh(rt: Runtime, org: SsoOrg, server: FakeMetadataServer) -> metadata_refresh.Refreshed:
    return metadata_refresh.refresh(rt, Actor.system(), org.connection_id, fetcher=server)


def settings(rt: Runtime, org: SsoOrg) -> dict[str, Any]:
    with rt.db.transaction() as db:
        return connections.stored_settings(connections.get(db, org.connection_id))


def audited(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with rt.db.transaction() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [{"reason": r.reason, **json.loads(r.data or "{}")} for r in rows]


def signed_in_by(client: TestClient, org: SsoOrg, signer: Credential, email: str) -> int:
    """A real sign-in through the ACS with a response signed by ``signer``; its status."""
    client.cookies.clear()
    request_id, relay_state = org.start(client)
    entity_id, acs = connections.sp_urls(org.rt, org.connection_id)
    claims = Claims(
        issued=datetime.now(UTC), response_issuer=IDP, assertion_issuer=IDP, destination=acs,
        recipient=acs, audiences=(entity_id,), in_response_to=request_id,
        confirmation_in_response_to=request_id, **person(email),
    )  # fmt: skip
    forge = SamlForge(session_keys())
    return int(org.post(client, forge.response(claims, signer=signer), relay_state)["status"])


def _submit(client: TestClient, path: str) -> Any:
    page = client.get("/acme/sso", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(path, data={"csrf_token": token.group(1)}, headers=HTML)


def test_unchanged_metadata_answered_304_changes_nothing(
    rt: Runtime, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    before = settings(rt, acme)
    assert refresh(rt, acme, server).result == "unchanged"  # same document, now with an ETag
    assert refresh(rt, acme, server).result == "unchanged"  # 304
    assert server.asked == [(URL, None), (URL, server.etag)]
    assert settings(rt, acme) == before
    assert audited(rt, "sso.metadata_refreshed") == []
    with rt.db.transaction() as db:
        source = db.get(SamlMetadataSource, acme.connection_id)
        assert source is not None and source.last_result == "unchanged"
        assert source.next_due_at > rt.now() + timedelta(hours=23)


def test_a_new_certificate_is_added_and_the_old_retires_once_the_new_one_signed(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    acme.set_mode("managed")
    keys = session_keys()
    old, new = keys.idp.cert_pem, keys.idp_next.cert_pem
    server.document = metadata(new)  # the IdP rolled over: only the new key is listed
    done = refresh(rt, acme, server)
    assert (done.result, done.added, done.retiring) == (
        "changed", (certificate_fingerprint(new),), (certificate_fingerprint(old),)
    )  # fmt: skip
    [event] = audited(rt, "sso.metadata_refreshed")
    assert event["added"] == [certificate_fingerprint(new)]
    assert event["retiring"] == [certificate_fingerprint(old)]
    assert settings(rt, acme)["idp_certificates"] == [old, new]

    assert signed_in_by(client, acme, keys.idp, "ada@acme.example") == 200  # old still works
    assert settings(rt, acme)["idp_certificates"] == [old, new]
    assert signed_in_by(client, acme, keys.idp_next, "bob@acme.example") == 200
    assert settings(rt, acme)["idp_certificates"] == [new]
    [retired] = audited(rt, "sso.certificates_retired")
    assert retired["retired"] == [certificate_fingerprint(old)]
    assert retired["verified_by"] == certificate_fingerprint(new)
    assert signed_in_by(client, acme, keys.idp, "ada@acme.example") == 400  # retired
    verified = [e["certificate"] for e in audited(rt, "sso.identity_verified")]
    assert verified == [certificate_fingerprint(old), certificate_fingerprint(new)]
    assert refresh(rt, acme, server).result == "unchanged"


def test_a_new_entity_id_waits_for_an_admin_and_applies_only_on_approval(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    moved = "https://login.acme.example/sso"
    server.document = metadata(
        session_keys().idp.cert_pem, entity_id="https://idp.new.example", sso_url=moved
    )
    assert refresh(rt, acme, server).pending
    assert (settings(rt, acme)["idp_entity_id"], settings(rt, acme)["idp_sso_url"]) != (
        "https://idp.new.example", moved
    )  # fmt: skip
    sign_in(client, "admin@acme.example")
    page = html.unescape(client.get("/acme/sso", headers=HTML).text)
    assert f"{IDP}</code> → <code>https://idp.new.example" in page
    assert f"/acme/sso/connections/{acme.connection_id}/metadata/approve" in page

    approved = _submit(client, f"/acme/sso/connections/{acme.connection_id}/metadata/approve")
    assert approved.status_code in (200, 303)
    assert settings(rt, acme)["idp_entity_id"] == "https://idp.new.example"
    assert settings(rt, acme)["idp_sso_url"] == moved
    [event] = audited(rt, "sso.metadata_change_approved")
    assert event["entity_id"] == {"from": IDP, "to": "https://idp.new.example"}
    again = client.post(f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata/reject")
    assert (again.status_code, again.json()["error"]) == (409, "no_pending_change")


def test_a_rejected_change_is_not_applied(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    server.document = metadata(session_keys().idp.cert_pem, entity_id="https://evil.example")
    sign_in(client, "admin@acme.example")
    base = f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata"
    refreshed = client.post(f"{base}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["pending"] is True
    pending = client.get(base).json()["pending"]
    assert pending["entity_id"] == {"old": IDP, "new": "https://evil.example"}
    rejected = _submit(client, f"/acme/sso/connections/{acme.connection_id}/metadata/reject")
    assert "Metadata change rejected." in rejected.text  # the SSO page's form
    assert client.get(base).json()["pending"] is None
    assert settings(rt, acme)["idp_entity_id"] == IDP
    assert len(audited(rt, "sso.metadata_change_rejected")) == 1


def test_a_rejected_change_is_not_proposed_again_while_the_idp_names_it(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    """Metadata that keeps naming a rejected entity id (and changes otherwise, as a
    regenerated document does) neither brings the change back nor audits it again;
    another change is proposed; metadata back at the connection's values forgets it."""
    current = session_keys().idp.cert_pem
    server.document = metadata(current, entity_id="https://evil.example")
    sign_in(client, "admin@acme.example")
    base = f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata"
    assert client.post(f"{base}/refresh").json()["pending"] is True
    assert client.post(f"{base}/reject").json()["rejected"]["entity_id"] == "https://evil.example"

    extra = new_key_pair("idp-extra", rt.now())[1]
    server.document = metadata(current, extra, entity_id="https://evil.example")
    again = refresh(rt, acme, server)
    assert (again.result, again.pending) == ("changed", False)  # the certificate only
    status = client.get(base).json()
    assert status["pending"] is None
    assert status["rejected"]["entity_id"] == "https://evil.example"
    [refreshed] = audited(rt, "sso.metadata_refreshed")[-1:]
    assert refreshed["pending"] is None
    page = html.unescape(client.get("/acme/sso", headers=HTML).text)
    assert "https://evil.example</code> and SSO URL" in page and "was rejected" in page
    assert f"{acme.connection_id}/metadata/approve" not in page
    assert settings(rt, acme)["idp_entity_id"] == IDP

    server.document = metadata(current, extra, entity_id="https://other.example")
    assert refresh(rt, acme, server).pending
    assert client.get(base).json()["pending"]["entity_id"]["new"] == "https://other.example"
    assert client.post(f"{base}/reject").status_code == 200

    server.document = metadata(current, extra)  # back at the connection's own values
    refresh(rt, acme, server)
    assert client.get(base).json()["rejected"] is None
    server.document = metadata(current, entity_id="https://other.example")
    assert refresh(rt, acme, server).pending  # proposed afresh
    assert len(audited(rt, "sso.metadata_change_rejected")) == 2


def test_the_idps_single_logout_service_follows_its_metadata(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    """Published, moved, withdrawn: each applies at once (as certificates do) and is
    audited; a sign-out then goes where the metadata says."""
    current, slo, moved = session_keys().idp.cert_pem, f"{IDP}/slo", f"{IDP}/logout/v2"
    server.document = metadata(current, slo_url=slo)
    sign_in(client, "admin@acme.example")
    api = f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata/refresh"
    published = client.post(api).json()
    assert (published["result"], published["single_logout_url"]) == (
        "changed", {"old": None, "new": slo}
    )  # fmt: skip
    assert settings(rt, acme)["idp_slo_url"] == slo
    acme.set_mode("managed")  # ada is signed up just in time
    server.document = metadata(current, slo_url=moved)
    assert refresh(rt, acme, server).single_logout == (slo, moved)
    assert [e["single_logout"] for e in audited(rt, "sso.metadata_refreshed")] == [
        {"from": None, "to": slo}, {"from": slo, "to": moved},
    ]  # fmt: skip
    assert signed_in_by(client, acme, session_keys().idp, "ada@acme.example") == 200
    out = client.post("/logout", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
    assert out.headers["location"].startswith(f"{moved}?SAMLRequest=")

    server.document = metadata(current)
    withdrawn = refresh(rt, acme, server)
    assert withdrawn.single_logout == (moved, None)
    assert "idp_slo_url" not in settings(rt, acme)
    assert refresh(rt, acme, server).single_logout is None  # 304: nothing moved


def test_a_failed_refresh_is_audited_and_after_days_the_page_says_so(
    rt: Runtime, client: TestClient, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    server.failure = "fetch_failed"
    before = settings(rt, acme)
    assert refresh(rt, acme, server).reason == "fetch_failed"
    server.failure, server.document = None, b"<not-metadata/>"
    assert refresh(rt, acme, server).reason == "saml_metadata_invalid"
    assert [e["reason"] for e in audited(rt, "sso.metadata_refresh_failed")] == [
        "fetch_failed", "saml_metadata_invalid"
    ]  # fmt: skip
    assert settings(rt, acme) == before
    sign_in(client, "admin@acme.example")
    banner = "could not be refreshed since"
    page = client.get("/acme/sso", headers=HTML).text
    assert banner not in page
    assert f"Metadata from <code>{URL}</code>" in page and "<strong>failed</strong>" in page
    with rt.db.transaction() as db:  # three days of failures
        db.execute(update(SamlMetadataSource).values(failing_since=rt.now() - timedelta(days=3)))
    page = client.get("/acme/sso", headers=HTML).text
    assert banner in page and "saml_metadata_invalid" in page
    assert client.get(f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata").json()[
        "failing_long"
    ]
    server.document = metadata(session_keys().idp.cert_pem)
    assert _submit(
        client, f"/acme/sso/connections/{acme.connection_id}/metadata/refresh"
    ).is_success
    assert banner not in client.get("/acme/sso", headers=HTML).text


def test_two_refreshers_one_wins(rt: Runtime, acme: SsoOrg, server: FakeMetadataServer) -> None:
    """The second refresher asks while the first is fetching (holding the lease)."""
    refused: list[str] = []

    def fetch_while_another_tries(url: str, etag: str | None, modified: str | None) -> Any:
        try:
            refresh(rt, acme, server)
        except Conflict as exc:
            refused.append(exc.code)
        assert metadata_refresh.refresh_due(rt, fetcher=server) == 0  # leased: skipped
        return server(url, etag, modified)

    done = metadata_refresh.refresh(
        rt, Actor.system(), acme.connection_id, fetcher=fetch_while_another_tries
    )
    assert done.result == "unchanged" and refused == ["refresh_in_progress"]
    assert len(server.asked) == 1
    with rt.db.transaction() as db:
        source = db.get(SamlMetadataSource, acme.connection_id)
        assert source is not None and source.lease_until is None


def test_the_schedule_refreshes_due_connections_only(
    rt: Runtime, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    assert metadata_refresh.refresh_due(rt, fetcher=server) == 1
    assert metadata_refresh.refresh_due(rt, fetcher=server) == 0  # next due in a day
    assert len(server.asked) == 1


def test_the_cli_refreshes_and_refuses_a_connection_without_a_url(
    hubgate: Run,  # noqa: F811 - the fixture
    rt: Runtime,
    acme: SsoOrg,
    server: FakeMetadataServer,
) -> None:
    server.document = metadata(session_keys().idp.cert_pem, session_keys().idp_next.cert_pem)
    done = json.loads(
        hubgate("sso", "connection", "refresh", str(acme.connection_id), "--json").stdout
    )
    assert done["result"] == "changed"
    assert done["added"] == [certificate_fingerprint(session_keys().idp_next.cert_pem)]
    with rt.db.transaction() as db:
        db.query(SamlMetadataSource).delete()
    refused = hubgate("sso", "connection", "refresh", str(acme.connection_id), ok=False)
    assert refused.exit_code != 0 and "not made from a metadata URL" in refused.output


def test_only_the_orgs_admins_refresh_or_decide(
    rt: Runtime, client: TestClient, world: World, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    world.member(acme.org, world.user("wendy@acme.example"), OrgRole.WRITE)
    sign_in(client, "wendy@acme.example")
    base = f"/api/v1/orgs/acme/sso/connections/{acme.connection_id}/metadata"
    for path in (base, f"{base}/refresh", f"{base}/approve"):
        answer = client.get(path) if path == base else client.post(path)
        assert answer.status_code == 403, (path, answer.text)
    assert server.asked == []
    token = re.search(
        r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/", headers=HTML).text
    )
    assert token is not None  # a real token: the refusal is of the member, not the form
    refused = client.post(
        f"/acme/sso/connections/{acme.connection_id}/metadata/refresh",
        data={"csrf_token": token.group(1)}, headers=HTML,
    )  # fmt: skip
    assert refused.status_code == 403 and server.asked == []


def test_metadata_that_keeps_rotating_without_a_sign_in_keeps_a_bounded_list(
    rt: Runtime, acme: SsoOrg, server: FakeMetadataServer
) -> None:
    for index in range(metadata_refresh.MAX_RETIRING + 3):
        server.document = metadata(new_key_pair(f"idp {index}", rt.now())[1])
        assert refresh(rt, acme, server).result == "changed"
    trusted = settings(rt, acme)
    assert len(trusted["idp_certificates"]) == metadata_refresh.MAX_RETIRING + 1
    assert len(trusted["idp_certificates_retiring"]) == metadata_refresh.MAX_RETIRING
