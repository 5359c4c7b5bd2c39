"""Complete SAML sign-ins per second through ``POST /sso/saml/{id}/acs`` against a
running hubgate (2 uvicorn workers) on loopback.

Each request carries a fresh IdP-initiated response (a new assertion id, since
replays are refused), signed beforehand so the IdP's cost is not measured:
hubgate decodes, verifies, checks, records the assertion id in the shared replay
store, marks the connection, audits and answers. The connection is never
activated, so these are test sign-ins (no SSO policy, no session; it prints the
path it measures); bench/login.py measures complete sign-ins. Prints figures;
asserts nothing.

    .venv/bin/python bench/saml_acs.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_saml_flow import IDP, idp_metadata  # noqa: E402
from tests.security.saml_forge import Claims, SamlForge, session_keys  # noqa: E402

import _load as load  # noqa: E402
from _load import form_posts  # noqa: E402
from _server import scratch_database, serve  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.operator import create_account, operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import build_runtime  # noqa: E402
from hubgate.sso import connections  # noqa: E402


def prepare(database_url: str) -> tuple[int, str, str]:
    """An org with an IdP-initiated SAML connection; (connection id, entity id, ACS URL)."""
    rt = build_runtime(load_settings(env="dev", database_url=database_url))
    with rt.db.transaction() as db:
        admin = create_account(
            db,
            rt,
            Actor.system(),
            "admin@bench.example",
            password=None,
            display_name=None,
            verified=True,
        )
        org = service.create_org(db, Actor.system(), "bench", None, admin)
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), org,
            idp_metadata(session_keys().idp.cert_pem), allow_idp_initiated=True,
        )  # fmt: skip
        entity_id, acs = connections.sp_urls(rt, row.id)
        return row.id, entity_id, acs


def responses(count: int, entity_id: str, acs: str) -> list[str]:
    forge = SamlForge(session_keys())
    now = datetime.now(UTC)
    return [
        forge.response(
            Claims(
                issued=now,
                response_issuer=IDP,
                assertion_issuer=IDP,
                destination=acs,
                recipient=acs,
                audiences=(entity_id,),
                in_response_to=None,
                confirmation_in_response_to=None,
            )  # fmt: skip
        )
        for _ in range(count)
    ]


def measured_path(url: str, body: str) -> str:
    """Which ACS path the connection takes, from the shape of one JSON answer."""
    answer = httpx.post(
        url, data={"SAMLResponse": body}, headers={"accept": "application/json"}, timeout=30
    ).json()
    if "identity" in answer:
        return (
            "test sign-ins (the connection is not active: the response is verified and"
            " shown as an Identity; no SSO policy, account, membership or session)"
        )
    if "user_id" in answer:
        return "complete sign-ins (active connection: SSO policy and a session)"
    return f"an unexpected answer: {str(answer)[:200]}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        connection, entity_id, acs = prepare(url)
        started = time.perf_counter()
        bodies = responses(args.requests + 50, entity_id, acs)
        print(
            f"signed {len(bodies)} responses in {time.perf_counter() - started:.1f}s"
            " (the IdP's work, not measured)"
        )
        with serve(url, workers=2) as base:
            target = f"{base}/sso/saml/{connection}/acs"
            print("measures:", measured_path(target, bodies[0]))
            requests = form_posts(target, [{"SAMLResponse": body} for body in bodies])
            load.run(target, requests[1:50], args.concurrency)  # warm-up
            elapsed, latencies, statuses = load.run(target, requests[50:], args.concurrency)
    latencies.sort()
    rate = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"POST /acs: {rate:,.0f} sign-ins/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        f"  statuses {statuses}"
    )
    print(
        "target >= 300 sign-ins/s on 2 workers:",
        "met" if rate >= 300 and statuses == {200: len(latencies)} else "NOT met",
    )


if __name__ == "__main__":
    main()
