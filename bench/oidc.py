"""Two figures for the OIDC relying party. Prints them; asserts nothing.

1. id_token validations per second on one core (RS256, keys already cached), the
   way the callback validates them: header checks, key choice, signature, claims.
2. Complete sign-ins per second against a running hubgate (2 uvicorn workers)
   with an OpenID Provider on loopback (bench/_oidc_provider.py: it signs real
   RS256 id_tokens with joserfc and signs each user in at once, so the figure is
   hubgate's, not a login page's). Each sign-in is one browser's
   ``GET /sso/{org}/start`` (state, nonce and PKCE verifier stored), the
   provider's authorization (a code), and ``GET /sso/oidc/{id}/callback``
   (state consumed, code exchanged with client_secret_basic, id_token validated
   against the cached JWKS, audited).

    .venv/bin/python bench/oidc.py [--seconds 2] [--sign-ins 2000] [--concurrency 8]
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _oidc_provider import CLIENT_ID, running_provider  # noqa: E402
from _server import free_port, scratch_database, serve  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.operator import create_account, operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import build_runtime  # noqa: E402
from hubgate.sso import connections  # noqa: E402
from hubgate.sso.oidc.id_token import Expected, validate_id_token  # noqa: E402

ISSUER, CLIENT, NONCE = "https://idp.acme.example", "hubgate-acme", "n-0S6_WzA2Mj"
TARGET = 5_000


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


# -- complete sign-ins ---------------------------------------------------------------


def prepare(database_url: str, issuer: str, client_secret: str) -> int:
    """Org ``bench`` with an OIDC connection to the loopback provider; its id."""
    settings = load_settings(env="dev", database_url=database_url, allow_private_idp_urls=True)
    rt = build_runtime(settings)
    try:
        provider = connections.discover(rt, issuer)  # before the transaction, never in it
        with rt.db.transaction() as db:
            admin = create_account(
                db, rt, Actor.system(), "admin@bench.example", password=None,
                display_name=None, verified=True,
            )  # fmt: skip
            org = service.create_org(db, Actor.system(), "bench", None, admin)
            row = connections.create_oidc(
                db, rt, Actor.system(), operator_principal(), org, issuer=issuer,
                client_id=CLIENT_ID, client_secret=client_secret, provider=provider,
            )  # fmt: skip
            return row.id
    finally:
        rt.db.engine.dispose()


@dataclass
class Tally:
    sign_ins: list[float] = field(default_factory=list)
    callbacks: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


async def sign_in(client: httpx.AsyncClient, base: str, tally: Tally) -> None:
    """One browser's sign-in: hubgate's start, the provider, hubgate's callback.
    The callback URL keeps its path and query; its origin is the server's (the
    redirect URI names HUBGATE_BASE_URL, and the server runs on a free port)."""
    started = time.perf_counter()
    start = await client.get(f"{base}/sso/bench/start", params={"next": "/bench"})
    authorized = await client.get(start.headers["location"])
    callback = urlsplit(authorized.headers["location"])
    before_callback = time.perf_counter()
    answer = await client.get(
        f"{base}{callback.path}?{callback.query}", headers={"accept": "application/json"}
    )
    done = time.perf_counter()
    tally.sign_ins.append(done - started)
    tally.callbacks.append(done - before_callback)
    tally.statuses[answer.status_code] = tally.statuses.get(answer.status_code, 0) + 1


async def run_sign_ins(base: str, count: int, concurrency: int) -> tuple[float, Tally]:
    tally, remaining = Tally(), [count]

    async def browser() -> None:
        async with httpx.AsyncClient(timeout=30) as client:  # its own cookie jar
            while remaining[0] > 0:
                remaining[0] -= 1
                await sign_in(client, base, tally)

    started = time.perf_counter()
    await asyncio.gather(*(browser() for _ in range(concurrency)))
    return time.perf_counter() - started, tally


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    return f"p50 {p50:.1f} ms  p99 {p99:.1f} ms"


def sign_ins(database_url: str | None, count: int, concurrency: int) -> None:
    secret = secrets.token_urlsafe(32)
    os.environ["HUBGATE_ALLOW_PRIVATE_IDP_URLS"] = "true"  # the provider is on loopback
    with (
        scratch_database(database_url) as url,
        running_provider(free_port(), secret) as issuer,
    ):
        connection = prepare(url, issuer, secret)
        with serve(url, workers=2) as base:
            asyncio.run(run_sign_ins(base, 50, concurrency))  # warm-up: JWKS, pools
            elapsed, tally = asyncio.run(run_sign_ins(base, count, concurrency))
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(
        f"provider: bench/_oidc_provider.py on loopback (RS256 id_tokens signed with "
        f"joserfc, no login page), connection {connection}, {database}, 2 workers, "
        f"{concurrency} browsers"
    )
    rate = len(tally.sign_ins) / elapsed
    print(f"complete sign-ins/s (start + authorize + callback): {rate:,.0f}  "
          f"{_percentiles(tally.sign_ins)}  statuses {tally.statuses}")  # fmt: skip
    print(f"GET /sso/oidc/{{id}}/callback alone: {_percentiles(tally.callbacks)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per validation round")
    parser.add_argument("--sign-ins", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    parser.add_argument("--skip-validations", action="store_true")
    args = parser.parse_args()
    if not args.skip_validations:
        validations(args.seconds)
    sign_ins(args.database_url, args.sign_ins, args.concurrency)


if __name__ == "__main__":
    main()
