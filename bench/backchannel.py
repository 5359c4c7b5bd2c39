"""Figures for OpenID Connect Back-Channel Logout. Prints them; asserts nothing
about timing.

Back-channel logouts handled per second by a running hubgate (2 uvicorn
workers), next to complete OIDC sign-ins per second through the same server and
database in the same run (bench/oidc.py's sign-in: start, the provider's
authorization, the callback with the code exchange and the whole SSO policy of a
managed org with role and team mappings).

The provider is bench/_oidc_provider.py's, run from here with a signing key this
process holds and a fresh ``sid`` in each id_token. After the sign-ins, one
logout_token per signed-in session (RS256, ``sid`` and ``sub``, a fresh ``jti``)
is signed before the clock starts, as the provider would sign it; each is then
POSTed to ``/sso/oidc/{id}/backchannel-logout`` on a connection of its own
(bench/_load.py), ``concurrency`` at a time. A logout is: the connection read,
the token's header, signature (keys cached per worker) and claims checked, its
jti spent in the shared store, the session and its SSO authentication deleted,
one audit event; all in one transaction.

Afterwards every logout must have answered 200, every session it named must be
gone and the warm-up people's sessions kept; otherwise it exits with status 1.

    .venv/bin/python bench/backchannel.py [--sign-ins 500] [--concurrency 16]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_bcl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load as load  # noqa: E402
import _oidc_provider as bench_provider  # noqa: E402
import oidc as bench_oidc  # noqa: E402
from _server import free_port, scratch_database, serve  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.db.models import AuditEvent, Email, SsoAuthentication, WebSession  # noqa: E402
from hubgate.runtime import Runtime, build_runtime  # noqa: E402
from hubgate.sso.oidc.logout_token import BACKCHANNEL_EVENT  # noqa: E402
from login import Person, people  # noqa: E402

KEY_VARIABLE = "BENCH_OIDC_SIGNING_JWK"
WARM_UP = 20


# -- the provider, with a key this process holds and a sid per sign-in --------------


class SessionProvider(bench_provider.Provider):
    """bench/_oidc_provider.py's provider, signing with the key given to it and
    putting a fresh ``sid`` (its session at the provider) in each id_token."""

    def __init__(self, issuer: str, client_secret: str, accounts: dict[str, list[str]]) -> None:
        super().__init__(issuer, client_secret, accounts)
        self.key = RSAKey.import_key(json.loads(os.environ[KEY_VARIABLE]))
        self.jwks = json.dumps(KeySet([self.key]).as_dict(private=False)).encode()

    def _id_token(self, request: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": request["sub"], "aud": bench_provider.CLIENT_ID,
            "nonce": request["nonce"], "iat": now, "exp": now + 300, "auth_time": now,
            "sid": str(uuid.uuid4()), "email": request["email"], "email_verified": True,
            "name": request["email"].split("@")[0], "groups": request["groups"],
        }  # fmt: skip
        header = {"alg": "RS256", "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])


def _serve_provider(port: int) -> None:
    import uvicorn

    path = os.environ[bench_provider.ACCOUNTS_VARIABLE]
    accounts = json.loads(Path(path).read_text(encoding="utf-8"))
    secret = os.environ[bench_provider.SECRET_VARIABLE]
    provider = SessionProvider(f"http://127.0.0.1:{port}", secret, accounts)
    uvicorn.run(
        bench_provider.App(provider), host="127.0.0.1", port=port, log_level="warning",
        access_log=False, lifespan="off", server_header=False, date_header=False,
    )  # fmt: skip


@contextmanager
def running_provider(
    port: int, secret: str, accounts: dict[str, list[str]], key: RSAKey
) -> Iterator[str]:
    """The provider in a child process (``backchannel.py provider PORT``); its issuer."""
    with bench_provider._accounts_file(accounts) as path:
        env = {
            **os.environ, bench_provider.SECRET_VARIABLE: secret,
            bench_provider.ACCOUNTS_VARIABLE: path,
            KEY_VARIABLE: json.dumps(key.as_dict(private=True)),
        }  # fmt: skip
        process = subprocess.Popen([sys.executable, __file__, "provider", str(port)], env=env)
        issuer = f"http://127.0.0.1:{port}"
        try:
            bench_provider._wait_ready(process, issuer)
            yield issuer
        finally:
            process.terminate()
            process.wait(timeout=10)


# -- the logout tokens ----------------------------------------------------------------


def sessions_of(rt: Runtime, connection_id: int, emails: set[str]) -> list[tuple[str, str]]:
    """(sub, sid) of every SSO authentication of ``emails`` through the connection
    (the bench provider's ``sub`` is the person's email)."""
    with rt.db.transaction() as db:
        rows = db.execute(
            select(SsoAuthentication.idp_subject, SsoAuthentication.idp_session).where(
                SsoAuthentication.connection_id == connection_id
            )
        ).all()
    return [(str(sub), str(sid)) for sub, sid in rows if sub in emails and sid]


def logout_tokens(key: RSAKey, issuer: str, named: Sequence[tuple[str, str]]) -> list[str]:
    """One logout_token per (sub, sid), as Back-Channel Logout 1.0 §2.4 shows it."""
    now = int(time.time())
    header = {"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"}
    return [
        jwt.encode(
            header,
            {
                "iss": issuer,
                "aud": bench_provider.CLIENT_ID,
                "iat": now,
                "exp": now + 600,
                "jti": str(uuid.uuid4()),
                "sub": sub,
                "sid": sid,
                "events": {BACKCHANNEL_EVENT: {}},
            },
            key,
            algorithms=["RS256"],
        )  # fmt: skip
        for sub, sid in named
    ]


def logout_phase(target: str, tokens: Sequence[str], concurrency: int) -> bench_oidc.Phase:
    requests = load.form_posts(target, [{"logout_token": token} for token in tokens])

    def run() -> tuple[float, bench_oidc.Tally]:
        elapsed, latencies, statuses = load.run(target, requests, concurrency)
        return elapsed, bench_oidc.Tally(latencies, [], Counter(statuses))

    return bench_oidc.measured("back-channel logouts", len(tokens), run)


# -- what the run must leave ----------------------------------------------------------


def _count(rt: Runtime, statement: Any) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(statement) or 0)


def check(rt: Runtime, crowd: Sequence[Person], warm: Sequence[Person], logouts: int) -> bool:
    """The logged-out people hold no session, the warm-up people keep theirs, and
    one ``sso.logout`` event was written per logout."""

    def sessions(group: Sequence[Person]) -> int:
        emails = [p.email for p in group]
        users = select(Email.user_id).where(Email.address.in_(emails))
        return _count(rt, select(func.count()).where(WebSession.user_id.in_(users)))

    found = {
        "sessions left of the logged-out": sessions(crowd),
        "sessions of the warm-up people": sessions(warm),
        "sso.logout events": _count(
            rt, select(func.count()).where(AuditEvent.action == "sso.logout")
        ),
    }
    expected = dict(zip(found, (0, len(warm), logouts), strict=True))
    wrong = [name for name in found if found[name] != expected[name]]
    summary = ", ".join(f"{name} {value}" for name, value in found.items())
    print(f"  {summary}: {'MISMATCH ' + '; '.join(wrong) if wrong else 'ok'}")
    return not wrong


# -- the run --------------------------------------------------------------------------


def run(database_url: str | None, count: int, concurrency: int) -> bool:
    secret, key = os.urandom(24).hex(), RSAKey.generate_key(2048, parameters={"kid": "bcl-1"})
    os.environ["HUBGATE_ALLOW_PRIVATE_IDP_URLS"] = "true"  # the provider is on loopback
    warm = people("bcl-warm", WARM_UP, bench_oidc.OIDC_DOMAIN)
    crowd = people("bcl-person", count, bench_oidc.OIDC_DOMAIN)
    accounts = {p.email: list(p.groups) for p in warm + crowd}
    with (
        scratch_database(database_url) as url,
        running_provider(free_port(), secret, accounts, key) as issuer,
    ):
        rt = build_runtime(load_settings(env="dev", database_url=url, allow_private_idp_urls=True))
        connection = bench_oidc.prepare_oidc(rt, issuer, secret)
        database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(f"{database}, 2 workers, {concurrency} clients, OIDC connection {connection}")
        with serve(url, workers=2) as base:
            bench_oidc.oidc_phase("OIDC warm-up", base, issuer, warm, concurrency)
            signed = bench_oidc.oidc_phase("OIDC sign-ins", base, issuer, crowd, concurrency)
            named = sessions_of(rt, connection, {p.email for p in crowd})
            tokens = logout_tokens(key, issuer, named)  # before the clock
            target = f"{base}/sso/oidc/{connection}/backchannel-logout"
            ended = logout_phase(target, tokens, concurrency)
        print(
            f"complete OIDC sign-ins/s: {signed.rate:,.0f}; back-channel logouts/s in the "
            f"same run: {ended.rate:,.0f} (figures on a shared 2-core machine are noisy)"
        )
        ok = signed.ok and ended.ok and len(named) == count
        ok &= check(rt, crowd, warm, len(tokens))
        rt.db.engine.dispose()
    return ok


def main() -> None:
    if sys.argv[1:2] == ["provider"]:
        _serve_provider(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sign-ins", type=int, default=500, help="people, each signing in once")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    args = parser.parse_args()
    if not run(args.database_url, args.sign_ins, args.concurrency):
        sys.exit(1)


if __name__ == "__main__":
    main()
