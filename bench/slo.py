"""IdP-initiated SAML Single Logouts per second through ``GET /sso/saml/{id}/slo``,
next to complete SAML sign-ins per second in the same run, against a running
hubgate (2 uvicorn workers) on loopback.

The org ``bench`` gets a SAML connection whose IdP (the test IdP of
tests/security/saml_forge.py) publishes a SingleLogoutService, a verified domain,
managed mode and role and team mappings (as bench/login.py). First ``--people``
distinct people sign in, IdP-initiated (each a session). Then the IdP logs each
of them out: one LogoutRequest per person naming their NameID, carried by
HTTP-Redirect and signed over the query string; every request is signed before
the clock starts, so the IdP's cost is not measured. hubgate inflates, verifies
the query-string signature, checks issuer, destination and times, records the
request's ID in the shared replay store, ends the person's sessions, audits, and
redirects with its own signed LogoutResponse. Each request is its own connection,
as each comes from its own browser (see _load.py).

Afterwards every person's session must be gone, each logout must have ended
exactly one, and every answer must be a redirect; otherwise it exits with status
1. Prints figures (noisy on a shared machine); asserts nothing about timing.

    .venv/bin/python bench/slo.py [--people 1000] [--concurrency 16]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_slo]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.slo_world import slo_metadata  # noqa: E402
from tests.integration.test_saml_flow import IDP  # noqa: E402
from tests.security.saml_forge import (  # noqa: E402
    LogoutClaims,
    build_logout_request,
    redirect_query,
    session_keys,
)

import _load as load  # noqa: E402
from _load import encode, form_posts  # noqa: E402
from _server import scratch_database, serve  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.db.models import AuditEvent, WebSession  # noqa: E402
from hubgate.operator import create_account, operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import Runtime, build_runtime  # noqa: E402
from hubgate.sso import connections  # noqa: E402
from login import Person, answers, make_managed, people  # noqa: E402

WARM_UP = 20


def prepare(rt: Runtime) -> tuple[int, str, str, str]:
    """Org ``bench`` with an IdP-initiated SAML connection that takes single logout;
    (connection id, SP entity id, ACS URL, SLO URL)."""
    with rt.db.transaction() as db:
        admin = create_account(
            db, rt, Actor.system(), "admin@bench.example", password=None, display_name=None,
            verified=True,
        )  # fmt: skip
        org = service.create_org(db, Actor.system(), "bench", None, admin)
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), org,
            slo_metadata(session_keys().idp.cert_pem), allow_idp_initiated=True,
        )  # fmt: skip
        entity_id, acs = connections.sp_urls(rt, row.id)
        return row.id, entity_id, acs, connections.slo_url(rt, row.id)


def logout_requests(crowd: Sequence[Person], target: str, destination: str) -> list[bytes]:
    """One signed HTTP-Redirect LogoutRequest per person to ``destination`` (the
    SLO URL as hubgate names itself), as encoded GETs of ``target``."""
    now, idp = datetime.now(UTC), session_keys().idp
    return [
        encode(
            "GET",
            f"{target}?"
            + redirect_query(
                build_logout_request(
                    LogoutClaims(issued=now, issuer=IDP, destination=destination, name_id=p.email)
                ),
                idp,
            ),
            headers={"Accept": "text/html"},
        )
        for p in crowd
    ]


def run_phase(
    label: str, unit: str, target: str, requests: list[bytes], concurrency: int, prepared: float
) -> tuple[float, dict[int, int]]:
    client_cpu = time.process_time()
    elapsed, latencies, statuses = load.run(target, requests, concurrency)
    client_cpu = time.process_time() - client_cpu
    latencies.sort()
    rate = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000
    print(
        f"{label:<16} {len(latencies):>5} {unit:<9} {rate:>6,.0f}/s  p50 {p50:6.1f} ms"
        f"  p99 {p99:6.1f} ms  statuses {dict(sorted(statuses.items()))}"
        f"  (client {client_cpu / elapsed:.0%} of a core; signed in {prepared:.1f}s beforehand)"
    )
    return rate, statuses


def sign_ins(target: str, crowd: Sequence[Person], entity_id: str, acs: str, c: int) -> float:
    started = time.perf_counter()
    requests = form_posts(
        target, [{"SAMLResponse": body} for body in answers(crowd, entity_id, acs)]
    )
    prepared = time.perf_counter() - started
    rate, _ = run_phase("sign-ins", "sign-ins", target, requests, c, prepared)
    return rate


def logouts(
    target: str, destination: str, crowd: Sequence[Person], c: int
) -> tuple[float, dict[int, int]]:
    started = time.perf_counter()
    requests = logout_requests(crowd, target, destination)
    prepared = time.perf_counter() - started
    return run_phase("idp logouts", "logouts", target, requests, c, prepared)


def check(rt: Runtime, crowd: Sequence[Person], redirects: int) -> bool:
    """No session left but the sign-ins' that no logout named (none), and each
    logout ended exactly one session."""
    with rt.db.transaction() as db:
        sessions = int(db.scalar(select(func.count()).select_from(WebSession)) or 0)
        events = list(db.scalars(select(AuditEvent.data).where(AuditEvent.action == "sso.logout")))
    ended = [json.loads(data or "{}").get("sessions_ended") for data in events]
    found = {"sessions left": sessions, "logouts audited": len(ended),
             "each ended one": all(n == 1 for n in ended), "redirects": redirects}  # fmt: skip
    expected = {"sessions left": 0, "logouts audited": len(crowd), "each ended one": True,
                "redirects": len(crowd)}  # fmt: skip
    for name, want in expected.items():
        mark = "ok" if found[name] == want else "MISMATCH"
        print(f"  {name:<16} {found[name]!s:>6}  expected {want!s:>6}  {mark}")
    return found == expected


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    args = parser.parse_args()
    warm, crowd = people("warm", WARM_UP), people("person", args.people)
    with scratch_database(args.database_url) as url:
        rt = build_runtime(load_settings(env="dev", database_url=url))
        connection, entity_id, acs, slo = prepare(rt)
        make_managed(rt, connection)
        print(
            f"database {url.split('://')[0]}, 2 workers, concurrency {args.concurrency}, "
            "IdP-initiated SAML sign-ins (managed, JIT, mappings), then one IdP-initiated "
            "LogoutRequest (HTTP-Redirect, signed) per person"
        )
        with serve(url, workers=2) as base:
            acs_target = f"{base}/sso/saml/{connection}/acs"
            slo_target = f"{base}/sso/saml/{connection}/slo"
            sign_ins(acs_target, warm, entity_id, acs, args.concurrency)
            _, warmed = logouts(slo_target, slo, warm, args.concurrency)
            sign_ins(acs_target, crowd, entity_id, acs, args.concurrency)
            _, measured = logouts(slo_target, slo, crowd, args.concurrency)
        print("after the run:")
        redirects = warmed.get(303, 0) + measured.get(303, 0)
        ok = check(rt, warm + crowd, redirects)
        rt.db.engine.dispose()
    if not ok:
        sys.exit("the logouts did not end exactly the expected sessions")


if __name__ == "__main__":
    main()
