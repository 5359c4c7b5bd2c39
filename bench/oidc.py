"""id_token validations per second on one core (RS256, keys already cached), the
way the callback validates them: header checks, key choice, signature, claims.
Prints figures; asserts nothing.

    .venv/bin/python bench/oidc.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from hubgate.sso.oidc.id_token import Expected, validate_id_token

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    token, keys, expected = fixture()
    validate_id_token(token, keys, expected)
    best = max(rate(token, keys, expected, args.seconds) for _ in range(3))
    print(f"id_token validations/s (RS256, cached keys, one core, best of 3): {best:,.0f}")
    print(f"target >= {TARGET:,}/s: {'met' if best >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
