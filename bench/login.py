"""Complete SSO sign-ins per second (SAML adapter + SSO policy + session) through
``POST /sso/saml/{id}/acs`` against a running hubgate (2 uvicorn workers) on loopback.

The org ``bench`` (from saml_acs.py's ``prepare``) gets a verified domain, its SAML
connection is verified and activated, the org goes managed, and three role
mappings and two team mappings are set, so every sign-in runs the whole policy:
verify the response, record its assertion id, link or create the account (JIT),
admit the member, recompute the mapped role and teams, open a session holding an
SSO authentication, audit, and answer JSON.

Two phases over the same ``--people`` distinct people (distinct NameID and email):
first sign-ins (each creates the account, the SSO link and the membership), then
repeat sign-ins (fresh assertions, since replays are refused). Sign-ins are
IdP-initiated, as in saml_acs.py; responses are signed before each phase so the
IdP's cost is not measured. Each sign-in is its own connection, as each comes
from its own browser (see _load.py). After the run the database must hold exactly the
expected users, memberships, links, team places, roles, sessions and SSO
authentications; a mismatch exits with status 1. Prints figures; asserts no timing.

    .venv/bin/python bench/login.py [--people 1000] [--concurrency 16]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_login]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_saml_flow import IDP  # noqa: E402
from tests.security.saml_forge import Claims, SamlForge, session_keys  # noqa: E402

import _load as load  # noqa: E402
from _load import form_posts  # noqa: E402
from _server import scratch_database, serve  # noqa: E402
from hubgate.access import OrgRole, Principal, TeamRole  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.db.models import (  # noqa: E402
    Membership,
    SsoAuthentication,
    SsoConnection,
    SsoLink,
    TeamMembership,
    User,
    WebSession,
)
from hubgate.operator import operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import Runtime, build_runtime  # noqa: E402
from hubgate.sso import activation, connections, domains, mappings, policy  # noqa: E402
from hubgate.sso.mappings import RoleRule  # noqa: E402
from saml_acs import prepare  # noqa: E402

DOMAIN = "bench-login.example"
WARM_UP = 20
_ROLE_RULES = (
    RoleRule("groups", "all-staff", OrgRole.READ),
    RoleRule("groups", "ml-research", OrgRole.CONTRIBUTOR),
    RoleRule("groups", "security", OrgRole.ADMIN),
)
_TEAM_RULES = (
    ("groups", "ml-research", "research", TeamRole.WRITE),
    ("groups", "gpu-users", "infra", TeamRole.READ),
)


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    groups: tuple[str, ...]

    @property
    def role(self) -> OrgRole:
        """What the role mappings must give: the most privileged match."""
        return max(r.role for r in _ROLE_RULES if r.value in self.groups)

    @property
    def teams(self) -> int:
        """Team places: the default team, plus each mapped team."""
        return 1 + sum(1 for rule in _TEAM_RULES if rule[1] in self.groups)


def people(prefix: str, count: int, domain: str = DOMAIN) -> list[Person]:
    """Everyone in ``all-staff``; every other one in ml-research, every third in
    gpu-users, every tenth in security."""
    crowd = []
    for index in range(count):
        groups = ["all-staff", "ml-research" if index % 2 else "data-science"]
        groups += ["gpu-users"] if index % 3 == 0 else []
        groups += ["security"] if index % 10 == 0 else []
        crowd.append(Person(f"{prefix}{index:05d}@{domain}", tuple(groups)))
    return crowd


def make_managed(
    rt: Runtime, connection_id: int, org_name: str = "bench", domain: str = DOMAIN
) -> None:
    """Verified domain, active connection, managed mode, role and team mappings."""
    system = Actor.system()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        operator = operator_principal()
        domains.add(db, rt, system, operator, org, domain)
        domains.verify_by_operator(db, rt, system, org, domain)
        row = db.get_one(SsoConnection, connection_id)
        connections.mark_verified(row, rt)
        activation.activate(db, system, Principal.operator(), row)
        policy.set_mode(db, rt, system, Principal.operator(), org, "managed")
        for team in ("research", "infra"):
            service.create_team(db, system, operator, org, team, None)
        mappings.set_role_mappings(db, system, operator, org, _ROLE_RULES)
        mappings.set_team_mappings(db, system, operator, org, _TEAM_RULES)


def answers(crowd: Sequence[Person], entity_id: str, acs: str) -> list[str]:
    """One fresh IdP-initiated response per person."""
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
                name_id=person.email,
                email=person.email,
                display_name=person.email.split("@")[0],
                groups=person.groups,
            )
        )
        for person in crowd
    ]


def run_phase(
    label: str, target: str, crowd: Sequence[Person], entity_id: str, acs: str, concurrency: int
) -> tuple[float, dict[int, int]]:
    started = time.perf_counter()
    bodies = answers(crowd, entity_id, acs)
    signing = time.perf_counter() - started
    requests = form_posts(target, [{"SAMLResponse": body} for body in bodies])
    client_cpu = time.process_time()
    elapsed, latencies, statuses = load.run(target, requests, concurrency)
    client_cpu = time.process_time() - client_cpu
    latencies.sort()
    rate = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000
    print(
        f"{label:<17} {len(latencies):>5} sign-ins  {rate:>6,.0f}/s  p50 {p50:6.1f} ms"
        f"  p99 {p99:6.1f} ms  statuses {dict(sorted(statuses.items()))}"
        f"  (client {client_cpu / elapsed:.0%} of a core; signed in {signing:.1f}s beforehand)"
    )
    return rate, statuses


def _count(rt: Runtime, model: type, *where: object) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _roles(rt: Runtime) -> dict[str, int]:
    with rt.db.transaction() as db:
        rows = db.execute(select(Membership.role, func.count()).group_by(Membership.role))
        return {role: int(n) for role, n in rows}


def check_rows(rt: Runtime, crowd: Sequence[Person], sign_ins: int) -> bool:
    """The database holds exactly what ``sign_ins`` sign-ins of ``crowd`` must leave,
    besides the org's admin (an account, a membership, a default-team place)."""
    roles = Counter(p.role.label for p in crowd)
    roles[OrgRole.ADMIN.label] += 1
    expected = {
        "users": len(crowd) + 1,
        "memberships": len(crowd) + 1,
        "sso links": len(crowd),
        "team places": sum(p.teams for p in crowd) + 1,
        "sessions": sign_ins,
        "sso authentications": sign_ins,
    }
    found = {
        "users": _count(rt, User),
        "memberships": _count(rt, Membership),
        "sso links": _count(rt, SsoLink),
        "team places": _count(rt, TeamMembership),
        "sessions": _count(rt, WebSession),
        "sso authentications": _count(rt, SsoAuthentication),
    }
    expected_roles, found_roles = dict(sorted(roles.items())), dict(sorted(_roles(rt).items()))
    for name, want in expected.items():
        mark = "ok" if found[name] == want else "MISMATCH"
        print(f"  {name:<20} {found[name]:>6}  expected {want:>6}  {mark}")
    mark = "ok" if found_roles == expected_roles else "MISMATCH"
    print(f"  {'roles':<20} {found_roles}  expected {expected_roles}  {mark}")
    return found == expected and found_roles == expected_roles


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
        connection, entity_id, acs = prepare(url)
        rt = build_runtime(load_settings(env="dev", database_url=url))
        make_managed(rt, connection)
        print(
            f"database {url.split('://')[0]}, 2 workers, concurrency {args.concurrency}, "
            "IdP-initiated SAML through an active connection, managed mode (JIT), "
            f"{len(_ROLE_RULES)} role and {len(_TEAM_RULES)} team mappings"
        )
        with serve(url, workers=2) as base:
            target = f"{base}/sso/saml/{connection}/acs"
            for phase in ("warm-up first", "warm-up repeat"):
                run_phase(phase, target, warm, entity_id, acs, args.concurrency)
            run_phase("first (JIT)", target, crowd, entity_id, acs, args.concurrency)
            rate, statuses = run_phase("repeat", target, crowd, entity_id, acs, args.concurrency)
        print("rows after the run:")
        rows_ok = check_rows(rt, warm + crowd, 2 * (len(warm) + len(crowd)))
        rt.db.engine.dispose()
    met = rate >= 300 and statuses == {200: len(crowd)}
    print("target >= 300 repeat sign-ins/s on 2 workers:", "met" if met else "NOT met")
    if not rows_ok:
        sys.exit("the database does not hold the expected rows")


if __name__ == "__main__":
    main()
