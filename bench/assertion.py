"""What a signed identity for upstreams costs per ``/auth/check``.

Run::

    .venv/bin/python bench/assertion.py

Prints microseconds per call on one core: a fresh ES256 assertion (a new caller
and resource each time, so nothing is reused), a reused one (the same caller and
resource within half the lifetime, the inference-call case), and the upstream's
verification (first sight, and the same token again), next to floors: one
``decide()``, one HMAC-SHA256 and a bare ECDSA P-256 signature. Uses a
throw-away SQLite database; nothing is asserted (benchmarks print, tests never time).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hubgate.access import (
    Action,
    CredentialKind,
    OrgRole,
    Principal,
    ResourceKind,
    ResourceTarget,
    Visibility,
    decide,
)
from hubgate.config import load_settings
from hubgate.db.migrate import upgrade
from hubgate.gate.assertion import Minter, Subject
from hubgate.runtime import build_runtime
from hubgate.signing_keys import published_jwks
from hubgate.upstream import AssertionVerifier

CALLS = 20_000


def per_call_us(work: Callable[[int], object], calls: int = CALLS) -> float:
    """Best of three runs of ``calls`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(calls):
            work(i)
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def subject(i: int) -> Subject:
    return Subject(f"user{i}@acme.test", "session", "acme", "call", f"acme/deployment/m{i}")


def measure_minting(minter: Minter) -> tuple[float, float]:
    """(fresh, reused) µs per mint."""
    unseen = itertools.count(1)  # a new caller every call, across the three runs
    fresh = per_call_us(lambda _i: minter.mint(subject(next(unseen))), calls=CALLS // 10)
    same = subject(0)
    return fresh, per_call_us(lambda _i: minter.mint(same))


def measure_verifying(minter: Minter, jwks: bytes) -> tuple[float, float]:
    """(first sight, same token again) µs per verification."""
    transport = httpx.MockTransport(lambda _r: httpx.Response(200, content=jwks))
    tokens = [minter.mint(subject(-i)) for i in range(3 * CALLS // 10)]
    audiences = [subject(-i).resource for i in range(len(tokens))]
    client = httpx.Client(transport=transport)
    verifier = AssertionVerifier("http://hubgate.test", audiences, client=client)
    unseen = iter(tokens)
    first = per_call_us(lambda _i: verifier.verify(next(unseen)), calls=CALLS // 10)
    return first, per_call_us(lambda _i: verifier.verify(tokens[0]))


def measure_floors(token: bytes) -> tuple[float, float, float]:
    """(decide(), HMAC-SHA256, bare P-256 signature) µs per call."""
    principal = Principal(
        credential=CredentialKind.SESSION, user_id=1, org_id=1, org_role=OrgRole.WRITE
    )
    target = ResourceTarget(1, ResourceKind.DEPLOYMENT, Visibility.PRIVATE, None, 2)
    key, raw = b"k" * 32, ec.generate_private_key(ec.SECP256R1())
    return (
        per_call_us(lambda _i: decide(principal, Action.CALL, target)),
        per_call_us(lambda _i: hmac.new(key, token, hashlib.sha256).digest()),
        per_call_us(lambda _i: raw.sign(token, ec.ECDSA(hashes.SHA256())), calls=CALLS // 10),
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        rt = build_runtime(load_settings(env="dev", database_url=url, upstream_assertion=True))
        minter = Minter(rt.db, rt.sealer, issuer="http://hubgate.test", lifetime=60)
        token = minter.mint(subject(0))  # makes and opens the key
        fresh, reused = measure_minting(minter)
        with rt.db.transaction() as db:
            jwks = json.dumps(published_jwks(db, rt.now())).encode()
        first, again = measure_verifying(minter, jwks)
        rt.db.engine.dispose()
    figures = {
        "mint, fresh (ES256 sign)": fresh,
        "mint, reused (LRU hit)": reused,
        "verify, first sight (ES256 verify)": first,
        "verify, same token again": again,
    }
    floors = zip(
        ("decide()", "HMAC-SHA256 of the JWT", "bare P-256 sign"),
        measure_floors(token.encode()),
        strict=True,
    )
    figures |= {f"floor: {name}": us for name, us in floors}
    for name, us in figures.items():
        print(f"{name:36} {us:8.1f} µs")


if __name__ == "__main__":
    main()
