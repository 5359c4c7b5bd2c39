"""Figures for the OIDC relying party. Prints them; asserts nothing about timing.

1. id_token validations per second on one core (RS256, keys already cached), the
   way the callback validates them: header checks, key choice, signature, claims.
2. Complete OIDC sign-ins per second against a running hubgate (2 uvicorn
   workers), next to complete SAML sign-ins through the same server and database
   in the same run, each as first sign-ins (just in time: account, SSO link,
   membership) and repeat sign-ins of the same ``--sign-ins`` people.

"Complete" as in bench/login.py: the connection is active, the org managed, with a
verified domain and three role and two team mappings, so every sign-in runs the
whole SSO policy and opens a session holding an SSO authentication.

An OIDC sign-in is one browser's ``GET /sso/{org}/start`` (state, nonce and PKCE
verifier stored, bound to the browser), the provider's authorization (the person
named by ``login_hint``, signed in at once; a code), and
``GET /sso/oidc/{id}/callback`` (state spent, code exchanged with
client_secret_basic, the RS256 id_token validated against the cached JWKS, the
policy, the session). The provider (bench/_oidc_provider.py) is a real HTTP
server in its own process, on the same two cores, and signs each id_token then.
A SAML sign-in is bench/login.py's IdP-initiated ``POST /sso/saml/{id}/acs``,
signed before the clock starts (the IdP's work is not measured there).

Each request goes on a connection of its own, as in bench/_load.py (browsers'
keep-alive connections would pin the load on one worker). After each protocol's
run the database must hold exactly the rows its sign-ins leave in its org; a
mismatch exits with status 1. The CPU each process spent per sign-in is printed
too (hubgate's workers, the provider, this client).

With ``--token-latency-ms`` the provider's token endpoint answers that late, as a
real one over the internet does (50-300 ms), spending no CPU meanwhile: the figure
then shows whether waiting on the provider holds up hubgate's workers (it must
not: :mod:`hubgate.web.threads`). Raise ``--concurrency`` with it, since each
browser then spends most of its sign-in waiting.

    .venv/bin/python bench/oidc.py [--seconds 2] [--sign-ins 1000] [--concurrency 16]
        [--skip-validations] [--skip-saml] [--token-latency-ms 0]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_oidc]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load as load  # noqa: E402
import login  # noqa: E402
from _oidc_provider import CLIENT_ID, running_provider  # noqa: E402
from _server import free_port, scratch_database, serve  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.db.models import (  # noqa: E402
    Membership,
    SsoAuthentication,
    SsoLink,
    Team,
    TeamMembership,
    WebSession,
)
from hubgate.operator import create_account, operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import Runtime, build_runtime  # noqa: E402
from hubgate.sso import connections  # noqa: E402
from hubgate.sso.oidc.id_token import Expected, validate_id_token  # noqa: E402
from login import Person, people  # noqa: E402
from saml_acs import prepare as prepare_saml  # noqa: E402

ISSUER, CLIENT, NONCE = "https://idp.acme.example", "hubgate-acme", "n-0S6_WzA2Mj"
TARGET = 5_000
SIGN_IN_TARGET, RATIO_TARGET = 300, 1.5
OIDC_ORG, OIDC_DOMAIN = "bench-oidc", "bench-oidc.example"
WARM_UP = 20


# -- id_token validations -------------------------------------------------------------


def fixture() -> tuple[str, KeySet, Expected]:
    """A realistic id_token (Okta-like claims, 10 groups) and a two-key set."""
    signing = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    keys = KeySet([signing, RSAKey.generate_key(2048, parameters={"kid": "k2"})])
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER, "sub": "00u1acme0example", "aud": CLIENT, "nonce": NONCE,
        "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 3600,
        "auth_time": int(now.timestamp()), "email": "ada.lovelace@acme.example",
        "email_verified": True, "name": "Ada Lovelace",
        "groups": [f"ml-platform-group-{n}" for n in range(10)],
    }  # fmt: skip
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signing, algorithms=["RS256"])
    expected = Expected(ISSUER, CLIENT, NONCE, frozenset({"RS256", "ES256", "PS256"}), now)
    return token, keys, expected


def rate(token: str, keys: KeySet, expected: Expected, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            validate_id_token(token, keys, expected)
        count += 100
    return count / (time.perf_counter() - started)


def validations(seconds: float) -> None:
    token, keys, expected = fixture()
    validate_id_token(token, keys, expected)
    best = max(rate(token, keys, expected, seconds) for _ in range(3))
    print(f"id_token validations/s (RS256, cached keys, one core, best of 3): {best:,.0f}")
    print(f"target >= {TARGET:,}/s: {'met' if best >= TARGET else 'NOT met'}")


# -- the orgs -------------------------------------------------------------------------


def prepare_oidc(rt: Runtime, issuer: str, client_secret: str) -> int:
    """Org ``bench-oidc``, managed, with an active OIDC connection to the loopback
    provider and login.py's domain and mappings; the connection's id."""
    provider = connections.discover(rt, issuer)  # before the transaction, never in it
    with rt.db.transaction() as db:
        admin = create_account(
            db, rt, Actor.system(), f"admin@{OIDC_DOMAIN}", password=None,
            display_name=None, verified=True,
        )  # fmt: skip
        org = service.create_org(db, Actor.system(), OIDC_ORG, None, admin)
        row = connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), org, issuer=issuer,
            client_id=CLIENT_ID, client_secret=client_secret, provider=provider,
        )  # fmt: skip
        connection_id = row.id
    login.make_managed(rt, connection_id, OIDC_ORG, OIDC_DOMAIN)
    return connection_id


# -- driving sign-ins -----------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    callbacks: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80, load.encode("GET", url, b"", headers)


async def oidc_sign_in(base: str, idp: load.KeptConnection, person: Person, tally: Tally) -> None:
    """One browser's sign-in: hubgate's start, the provider, hubgate's callback.
    Each request to hubgate goes on a connection of its own (see _load.py); the
    browser keeps its connection to the provider, as browsers do. The callback URL
    keeps its path and query; its origin is the server's (the redirect URI names
    HUBGATE_BASE_URL, and the server runs on a free port)."""
    started = time.perf_counter()
    start = await load.exchange(*_get(f"{base}/sso/{OIDC_ORG}/start?next=/{OIDC_ORG}"))
    cookie = (start.header("set-cookie") or "").split(";", 1)[0]
    authorize = f"{start.header('location')}&{urlencode({'login_hint': person.email})}"
    authorized = await idp.exchange(load.encode("GET", authorize, keep_alive=True))
    callback = urlsplit(authorized.header("location") or "")
    before_callback = time.perf_counter()
    answer = await load.exchange(
        *_get(
            f"{base}{callback.path}?{callback.query}",
            {"Accept": "application/json", "Cookie": cookie},
        )
    )
    done = time.perf_counter()
    tally.latencies.append(done - started)
    tally.callbacks.append(done - before_callback)
    tally.statuses[answer.status] += 1


async def crowd_signs_in(
    base: str, issuer: str, crowd: Sequence[Person], concurrency: int
) -> tuple[float, Tally]:
    """``concurrency`` browsers sign ``crowd`` in through hubgate at ``base`` and the
    provider at ``issuer``, each person once; the seconds it took and the tally."""
    tally, pending = Tally(), list(reversed(crowd))
    provider = urlsplit(issuer)

    async def browser() -> None:
        idp = load.KeptConnection(provider.hostname or "127.0.0.1", provider.port or 80)
        try:
            while pending:
                await oidc_sign_in(base, idp, pending.pop(), tally)
        finally:
            idp.close()

    started = time.perf_counter()
    await asyncio.gather(*(browser() for _ in range(concurrency)))
    return time.perf_counter() - started, tally


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    return f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"


# -- CPU per sign-in, per process (Linux /proc) ----------------------------------------


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "other"
    if b"_oidc_provider" in command:
        return "provider"
    return "hubgate" if b"spawn_main" in command or b"uvicorn" in command else "other"


def _descendants(pid: int) -> list[int]:
    return [c for child in _children(pid) for c in (child, *_descendants(child))]


@dataclass(frozen=True, slots=True)
class Phase:
    label: str
    count: int
    rate: float
    statuses: dict[int, int]
    cpu: dict[str, float]
    """CPU milliseconds per sign-in, by process: hubgate (its workers), provider, client."""

    @property
    def ok(self) -> bool:
        return self.statuses == {200: self.count}


def _machine() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot (/proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def measured(label: str, count: int, run: Callable[[], tuple[float, Tally]]) -> Phase:
    processes = _descendants(os.getpid())
    before = {pid: _cpu_seconds(pid) for pid in processes}
    machine = _machine()
    client = time.process_time()
    elapsed, tally = run()
    client = time.process_time() - client
    busy, total = (after - was for after, was in zip(_machine(), machine, strict=True))
    cpu: Counter[str] = Counter({"client": client})
    for pid in processes:
        cpu[_role(pid)] += _cpu_seconds(pid) - before[pid]
    per_sign_in = {r: 1000 * s / count for r, s in cpu.items() if 1000 * s / count >= 0.05}
    phase = Phase(label, count, count / elapsed, dict(tally.statuses), per_sign_in)
    print(
        f"{label:<22} {count:>5} sign-ins  {phase.rate:>6,.0f}/s  {_percentiles(tally.latencies)}"
        f"  statuses {dict(sorted(tally.statuses.items()))}"
    )
    shares = "  ".join(f"{role} {ms:.1f}" for role, ms in sorted(per_sign_in.items()))
    ours = sum(cpu.values())
    cores = os.cpu_count() or 2
    print(
        f"{'':<22} CPU ms/sign-in: {shares}  (all {sum(per_sign_in.values()):.1f}: at most "
        f"{cores * 1000 / sum(per_sign_in.values()):,.0f}/s on {cores} idle cores)  machine "
        f"{busy / total:.0%} busy, {ours / total:.0%} of it this run"
        if total
        else ""
    )
    if tally.callbacks:
        print(f"{'':<22} GET /sso/oidc/{{id}}/callback alone: {_percentiles(tally.callbacks)}")
    return phase


def oidc_phase(
    label: str, base: str, issuer: str, crowd: Sequence[Person], concurrency: int
) -> Phase:
    return measured(
        label, len(crowd), lambda: load.run_loop(crowd_signs_in(base, issuer, crowd, concurrency))
    )


def saml_phase(
    label: str, target: str, crowd: Sequence[Person], saml: tuple[str, str], concurrency: int
) -> Phase:
    bodies = login.answers(crowd, *saml)  # signed before the clock starts
    requests = load.form_posts(target, [{"SAMLResponse": body} for body in bodies])

    def run() -> tuple[float, Tally]:
        elapsed, latencies, statuses = load.run(target, requests, concurrency)
        return elapsed, Tally(latencies, [], Counter(statuses))

    return measured(label, len(crowd), run)


# -- what the sign-ins must leave -----------------------------------------------------


def _count(rt: Runtime, statement: object) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(statement) or 0)  # type: ignore[call-overload]


def check_org(rt: Runtime, org_name: str, crowd: Sequence[Person], sign_ins: int) -> bool:
    """The org holds exactly what ``sign_ins`` sign-ins of ``crowd`` must leave,
    besides its admin (a membership and a default-team place)."""
    with rt.db.transaction() as db:
        org_id = service.get_org(db, org_name).id
    members = select(Membership.user_id).where(Membership.org_id == org_id)
    count = select(func.count())
    roles = Counter(p.role.label for p in crowd)
    roles[login.OrgRole.ADMIN.label] += 1
    expected = {
        "memberships": len(crowd) + 1,
        "sso links": len(crowd),
        "team places": sum(p.teams for p in crowd) + 1,
        "sessions": sign_ins,
        "sso authentications": sign_ins,
    }
    found = {
        "memberships": _count(rt, count.select_from(Membership).where(Membership.org_id == org_id)),
        "sso links": _count(rt, count.select_from(SsoLink).where(SsoLink.user_id.in_(members))),
        "team places": _count(
            rt, count.select_from(TeamMembership).join(Team).where(Team.org_id == org_id)
        ),
        "sessions": _count(
            rt, count.select_from(WebSession).where(WebSession.user_id.in_(members))
        ),
        "sso authentications": _count(
            rt, count.select_from(SsoAuthentication).where(SsoAuthentication.org_id == org_id)
        ),
    }
    with rt.db.transaction() as db:
        rows = db.execute(
            select(Membership.role, func.count())
            .where(Membership.org_id == org_id)
            .group_by(Membership.role)
        )
        found_roles = {role: int(n) for role, n in rows}
    mismatched = [name for name, want in expected.items() if found[name] != want]
    if found_roles != dict(roles):
        mismatched.append(f"roles {found_roles} (expected {dict(roles)})")
    summary = ", ".join(f"{name} {found[name]}" for name in expected)
    print(f"  {org_name}: {summary}: {'MISMATCH ' + '; '.join(mismatched) if mismatched else 'ok'}")
    return not mismatched


# -- the run --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    database_url: str | None
    sign_ins: int
    concurrency: int
    saml: bool
    token_latency: float = 0.0


def sign_ins(run: Run) -> bool:
    secret = secrets.token_urlsafe(32)
    os.environ["HUBGATE_ALLOW_PRIVATE_IDP_URLS"] = "true"  # the provider is on loopback
    oidc_warm = people("oidc-warm", WARM_UP, OIDC_DOMAIN)
    oidc_crowd = people("oidc-person", run.sign_ins, OIDC_DOMAIN)
    saml_warm, saml_crowd = people("warm", WARM_UP), people("person", run.sign_ins)
    accounts = {p.email: list(p.groups) for p in oidc_warm + oidc_crowd}
    with (
        scratch_database(run.database_url) as url,
        running_provider(free_port(), secret, accounts, run.token_latency) as issuer,
    ):
        settings = load_settings(env="dev", database_url=url, allow_private_idp_urls=True)
        rt = build_runtime(settings)
        connection = prepare_oidc(rt, issuer, secret)
        saml_connection, entity_id, acs = prepare_saml(url)
        login.make_managed(rt, saml_connection)
        database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(
            f"{database}, 2 workers, {run.concurrency} browsers, managed orgs with "
            f"{len(login._ROLE_RULES)} role and {len(login._TEAM_RULES)} team mappings; "
            f"OIDC connection {connection} to bench/_oidc_provider.py on loopback "
            "(RS256 id_tokens signed per sign-in), SAML connection "
            f"{saml_connection} (IdP-initiated, responses signed beforehand)"
            + (f"; the token endpoint answers {run.token_latency * 1000:.0f} ms late"
               if run.token_latency else "")
        )  # fmt: skip
        phases: dict[str, Phase] = {}
        with serve(url, workers=2) as base:
            for label, crowd in (("warm-up", oidc_warm), ("warm-up", oidc_warm)):
                oidc_phase(f"OIDC {label}", base, issuer, crowd, run.concurrency)
            phases["oidc first"] = oidc_phase(
                "OIDC first (JIT)", base, issuer, oidc_crowd, run.concurrency
            )
            phases["oidc repeat"] = oidc_phase(
                "OIDC repeat", base, issuer, oidc_crowd, run.concurrency
            )
            if run.saml:
                target = f"{base}/sso/saml/{saml_connection}/acs"
                saml = (entity_id, acs)
                for crowd in (saml_warm, saml_warm):
                    saml_phase("SAML warm-up", target, crowd, saml, run.concurrency)
                phases["saml first"] = saml_phase(
                    "SAML first (JIT)", target, saml_crowd, saml, run.concurrency
                )
                phases["saml repeat"] = saml_phase(
                    "SAML repeat", target, saml_crowd, saml, run.concurrency
                )
        print("rows after the run:")
        rows_ok = check_org(rt, OIDC_ORG, oidc_warm + oidc_crowd, 2 * (WARM_UP + run.sign_ins))
        if run.saml:
            rows_ok &= check_org(rt, "bench", saml_warm + saml_crowd, 2 * (WARM_UP + run.sign_ins))
        rt.db.engine.dispose()
    verdict(phases)
    return rows_ok


def verdict(phases: dict[str, Phase]) -> None:
    oidc = phases["oidc repeat"]
    met = oidc.rate >= SIGN_IN_TARGET and oidc.ok
    print(
        f"complete OIDC sign-ins/s (repeat): {oidc.rate:,.0f}; target >= {SIGN_IN_TARGET}"
        f" on 2 workers: {'met' if met else 'NOT met'}"
    )
    saml = phases.get("saml repeat")
    if saml is None:
        return
    ratio = saml.rate / oidc.rate
    first = phases["saml first"].rate / phases["oidc first"].rate
    print(
        f"complete SAML sign-ins/s (repeat) in the same run: {saml.rate:,.0f}; SAML/OIDC "
        f"{ratio:.2f}x (first sign-ins {first:.2f}x); target <= {RATIO_TARGET}x: "
        f"{'met' if ratio <= RATIO_TARGET and saml.ok else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per validation round")
    parser.add_argument(
        "--sign-ins", type=int, default=1000, help="people, each signing in twice per protocol"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    parser.add_argument("--skip-validations", action="store_true")
    parser.add_argument("--skip-saml", action="store_true", help="no SAML figure")
    parser.add_argument(
        "--token-latency-ms", type=float, default=0.0,
        help="the provider's token endpoint answers this late (no CPU spent)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.skip_validations:
        validations(args.seconds)
    run = Run(
        args.database_url, args.sign_ins, args.concurrency, not args.skip_saml,
        args.token_latency_ms / 1000,
    )  # fmt: skip
    if not sign_ins(run):
        sys.exit("the database does not hold the expected rows")


if __name__ == "__main__":
    main()
