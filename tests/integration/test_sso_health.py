"""Sign-in health (hubgate.sso.health): real SAML sign-ins and refusals through the
ACS, then the chart on the SSO page, the JSON API and the audit page its bars link
to must all agree with the audit log; the refusal metric's labels stay bounded."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import metrics
from hubgate.app import create_app
from hubgate.db.models import AuditEvent
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, person, sso_org

HTML = {"accept": "text/html"}
SIGN_INS, MISMATCHES, WRONG_AUDIENCE = 3, 2, 1


def _refusals(connection: int, reason: str) -> float:
    labels = {"method": "sso", "connection": str(connection), "reason": reason}
    return metrics.REGISTRY.get_sample_value("hubgate_sign_in_refusals_total", labels) or 0.0


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def sequence(rt: Runtime, acme: SsoOrg) -> dict[str, Any]:
    """The known sequence, each attempt from a browser of its own; the refusal codes seen."""
    acme.set_mode("managed")  # sign-ins create accounts just in time
    before = _refusals(acme.connection_id, "domain_mismatch")
    answers = [
        *(acme.sign_in(_browser(rt), **person(f"p{i}@acme.example")) for i in range(SIGN_INS)),
        *(acme.sign_in(_browser(rt), **person("x@nobody.example")) for _ in range(MISMATCHES)),
        *(
            acme.sign_in(_browser(rt), audiences=("https://elsewhere",), **person("a@acme.example"))
            for _ in range(WRONG_AUDIENCE)
        ),
    ]
    assert [a["status"] for a in answers[:SIGN_INS]] == [200] * SIGN_INS
    errors = Counter(a["error"] for a in answers[SIGN_INS:])
    assert errors["domain_mismatch"] == MISMATCHES and sum(errors.values()) == 3
    acme.set_mode("off")  # so the admin signs in with a password to read the figures
    return {"errors": errors, "metric_before": before}


def _browser(rt: Runtime) -> TestClient:
    return TestClient(create_app(runtime=rt))


def _from_audit(rt: Runtime, org_id: int, chars: int) -> Counter[tuple[str, str, str, str]]:
    """What the audit log says, bucketed in Python: (bucket, connection, outcome, reason)."""
    with rt.db.transaction() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id)).all()
        found: Counter[tuple[str, str, str, str]] = Counter()
        for e in events:
            if e.action == "sso.login":
                connection = str(json.loads(e.data)["connection"])
                found[(str(e.at)[:chars], connection, "success", "")] += 1
            elif e.action == "sso.login_refused":
                found[(str(e.at)[:chars], e.target.split(":")[1], "refused", e.reason or "")] += 1
        return found


@pytest.mark.parametrize(("period", "chars"), [("hour", 13), ("day", 10)])
def test_the_api_figures_match_the_audit_log(
    client: TestClient, rt: Runtime, acme: SsoOrg, sequence: dict[str, Any], period: str, chars: int
) -> None:
    sign_in(client, "admin@acme.example")
    answer = client.get(f"/api/v1/orgs/acme/sso/health?period={period}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["buckets"]) == {"hour": 48, "day": 30}[period]
    got = Counter(
        {
            (c["start"].replace("T", " ")[:chars], str(c["connection_id"]), c["outcome"],
             c["reason"] or ""): c["count"]
            for c in body["counts"]
        }
    )  # fmt: skip
    assert got == _from_audit(rt, acme.org.id, chars)
    assert sum(got.values()) == SIGN_INS + MISMATCHES + WRONG_AUDIENCE
    (connection,) = body["connections"]
    assert connection["id"] == acme.connection_id and connection["last_sign_in_at"]


def test_the_chart_bars_link_to_the_audit_events_they_count(
    client: TestClient, rt: Runtime, acme: SsoOrg, sequence: dict[str, Any]
) -> None:
    sign_in(client, "admin@acme.example")
    page = client.get("/acme/sso", headers=HTML)
    assert page.status_code == 200
    day = page.text[page.text.index('id="chart-day"') :]
    day = day[: day.index("</figure>")]
    links = [html.unescape(h) for h in re.findall(r'<a href="([^"]+)"><rect', day)]
    assert len(links) == len(_from_audit(rt, acme.org.id, 10))
    total = 0
    for link in links:
        assert "since=" in link and "until=" in link and f"connection={acme.connection_id}" in link
        listed = client.get(link, headers=HTML)
        assert listed.status_code == 200
        rows = listed.text.count('<td class="nowrap">')
        action = "sso.login_refused" if "login_refused" in link else "sso.login"
        assert listed.text.count(f"<code>{action}</code>") == rows
        if "reason=domain_mismatch" in link:
            assert rows == MISMATCHES
        total += rows
    assert total == SIGN_INS + MISMATCHES + WRONG_AUDIENCE


def test_the_refusal_metric_names_connection_and_reason(
    acme: SsoOrg, sequence: dict[str, Any]
) -> None:
    after = _refusals(acme.connection_id, "domain_mismatch")
    assert after - sequence["metric_before"] == MISMATCHES


def test_unknown_reason_codes_count_as_other() -> None:
    assert metrics.bounded_reason("domain_mismatch") == "domain_mismatch"
    assert metrics.bounded_reason("invalid_credentials") == "invalid_credentials"
    assert metrics.bounded_reason("made-up-" + "x" * 500) == "other"


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday", "until=2026-13-01", "connection=0", "connection=-1",
        "connection=99999999999999999999999", "since=0001-01-01T00:00:00%2B01:00",
        "since=" + "9" * 41, "reason=" + "r" * 65,
    ],
)  # fmt: skip
def test_the_audit_page_refuses_bad_filters(client: TestClient, acme: SsoOrg, query: str) -> None:
    sign_in(client, "admin@acme.example")
    assert 400 <= client.get(f"/acme/audit?{query}", headers=HTML).status_code < 500


def test_the_audit_page_takes_the_empty_form(client: TestClient, acme: SsoOrg) -> None:
    sign_in(client, "admin@acme.example")
    empty = "actor=&action=&trace=&reason=&connection=&since=&until="
    assert client.get(f"/acme/audit?{empty}", headers=HTML).status_code == 200


@pytest.mark.parametrize("period", ["week", "", "h" * 100])
def test_the_api_refuses_an_unknown_period(client: TestClient, acme: SsoOrg, period: str) -> None:
    sign_in(client, "admin@acme.example")
    assert client.get(f"/api/v1/orgs/acme/sso/health?period={period}").status_code == 400


def test_the_health_is_for_org_admins(client: TestClient, acme: SsoOrg, world: World) -> None:
    from hubgate.access import OrgRole

    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    sign_in(client, "bob@acme.example")
    assert client.get("/api/v1/orgs/acme/sso/health").status_code == 403
