"""The upstream verifier (hubgate.upstream) from the attacker's side.

Each forged token is built so that it would pass a careless verifier (the
HS256 forgery really does verify under HS256 with the public key as secret),
so the test shows the named check refusing it, not the crypto failing by luck.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hubgate.upstream import (
    MAX_JWKS_BYTES,
    AssertionInvalid,
    AssertionMiddleware,
    AssertionVerifier,
    UpstreamIdentity,
    identity_of,
)

HUBGATE = "https://hubgate.test"
RESOURCE = "acme/deployment/chat"
NOW = 1_800_000_000
KEY = ECKey.generate_key("P-256", auto_kid=True)
OTHER = ECKey.generate_key("P-256", auto_kid=True)
TYPE = "hubgate-assertion+jwt"


def _jwks(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [{**k.as_dict(private=False), "alg": "ES256", "use": "sig"} for k in keys]}


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": HUBGATE, "aud": RESOURCE, "res": RESOURCE, "org": "acme", "act": "call",
        "cred": "personal_token", "sub": "member@acme.test", "iat": NOW, "exp": NOW + 60,
        "jti": "j1",
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _mint(key: ECKey = KEY, kid: str | None = None, typ: str = TYPE, **changes: object) -> str:
    header = {"alg": "ES256", "kid": kid or key.kid, "typ": typ}
    return jwt.encode(header, _claims(**changes), key, ["ES256"])


class KeyServer:
    """hubgate's JWKS route as an httpx transport, counting fetches."""

    def __init__(self, body: bytes) -> None:
        self.body, self.fetches = body, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, content=self.body)


def _verifier(server: KeyServer, clock: Callable[[], float] = lambda: NOW) -> AssertionVerifier:
    client = httpx.Client(transport=httpx.MockTransport(server))
    return AssertionVerifier(HUBGATE, RESOURCE, client=client, clock=clock)


@pytest.fixture
def server() -> KeyServer:
    return KeyServer(json.dumps(_jwks(KEY)).encode())


@pytest.fixture
def verifier(server: KeyServer) -> AssertionVerifier:
    return _verifier(server)


def _reason(verifier: AssertionVerifier, token: str) -> str:
    with pytest.raises(AssertionInvalid) as refused:
        verifier.verify(token)
    return refused.value.reason


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_good_assertion_gives_the_caller(verifier: AssertionVerifier) -> None:
    assert verifier.verify(_mint()) == UpstreamIdentity(
        subject="member@acme.test", credential="personal_token", org="acme", action="call",
        resource=RESOURCE, token_id="j1", expires_at=NOW + 60,
    )  # fmt: skip


def test_an_anonymous_caller_has_no_subject(verifier: AssertionVerifier) -> None:
    assert verifier.verify(_mint(sub=None, cred="anonymous")).anonymous


def test_alg_none_is_refused_before_any_key(verifier: AssertionVerifier, server: KeyServer) -> None:
    """RFC 8725 §2.1: an unsigned token that names no algorithm's key."""
    header = {"alg": "none", "kid": KEY.kid, "typ": TYPE}
    token = f"{_b64(header)}.{_b64(_claims(sub='admin@acme.test'))}."
    assert _reason(verifier, token) == "algorithm_refused"
    assert server.fetches == 0


def test_hs256_keyed_with_the_public_key_is_refused(verifier: AssertionVerifier) -> None:
    """The key-confusion attack: the public JWK, known to all, used as an HMAC
    secret. The forgery verifies under HS256 with that secret; the verifier
    pins ES256 and never tries."""
    secret = OctKey.import_key(json.dumps(KEY.as_dict(private=False)).encode())
    header = {"alg": "HS256", "kid": KEY.kid, "typ": TYPE}
    forged = jwt.encode(header, _claims(sub="admin@acme.test"), secret, ["HS256"])
    assert jwt.decode(forged, secret, ["HS256"]).claims["sub"] == "admin@acme.test"
    assert _reason(verifier, forged) == "algorithm_refused"


def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    verifier: AssertionVerifier,
) -> None:
    assert _reason(verifier, _mint(OTHER, kid=KEY.kid)) == "signature_invalid"


def test_a_tampered_payload_is_refused(verifier: AssertionVerifier) -> None:
    header, _payload, signature = _mint().split(".")
    forged = f"{header}.{_b64(_claims(sub='admin@acme.test'))}.{signature}"
    assert _reason(verifier, forged) == "signature_invalid"


def test_an_unknown_kid_refetches_at_most_once_per_window(server: KeyServer) -> None:
    now = [float(NOW)]
    verifier = _verifier(server, clock=lambda: now[0])
    token = _mint(OTHER)
    assert [_reason(verifier, token) for _ in range(5)] == ["key_unknown"] * 5
    assert server.fetches == 1
    now[0] += 30
    server.body = json.dumps(_jwks(KEY, OTHER)).encode()  # hubgate rotated meanwhile
    assert verifier.verify(token).subject == "member@acme.test"
    assert server.fetches == 2


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": NOW - 10, "iat": NOW - 70}, "expired"),
        ({"iss": "https://evil.test"}, "issuer_mismatch"),
        ({"aud": "acme/deployment/other"}, "audience_mismatch"),
        ({"aud": None}, "claims_invalid"),
        ({"iat": NOW + 60, "exp": NOW + 120}, "claims_invalid"),
        ({"exp": NOW + 3600}, "lifetime_too_long"),
        ({"org": None}, "claims_invalid"),
        ({"org": ["acme"]}, "claims_invalid"),
    ],
)
def test_claims_are_checked(
    verifier: AssertionVerifier, changes: dict[str, object], reason: str
) -> None:
    assert _reason(verifier, _mint(**changes)) == reason


def test_another_jwt_type_is_refused(verifier: AssertionVerifier) -> None:
    """An ID token or any other JWT of the same issuer is not an assertion."""
    assert _reason(verifier, _mint(typ="JWT")) == "type_refused"


@pytest.mark.parametrize("token", ["", "a.b", "not a jwt", "a.b.c", "x" * 10])
def test_garbage_is_malformed(verifier: AssertionVerifier, token: str) -> None:
    assert _reason(verifier, token) == "token_malformed"


def test_an_oversized_token_is_refused_unread(verifier: AssertionVerifier) -> None:
    assert _reason(verifier, _mint(pad="x" * 5000)) == "token_too_large"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"keys": [], "pad": "x" * MAX_JWKS_BYTES}).encode(),
        json.dumps({"keys": _jwks(KEY)["keys"] * 17}).encode(),
        b"not json",
        b'{"keys": {}}',
    ],
)
def test_a_bad_key_set_fails_closed(body: bytes) -> None:
    with pytest.raises(AssertionInvalid) as refused:
        _verifier(KeyServer(body)).verify(_mint())
    assert (refused.value.reason, refused.value.status) == ("jwks_unavailable", 503)


def test_keys_of_other_types_or_algorithms_are_skipped() -> None:
    keys = [
        {**KEY.as_dict(private=False), "alg": "HS256"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": KEY.kid},
        {"kty": "EC", "crv": "P-256", "kid": KEY.kid, "x": "bad", "y": "bad"},
    ]
    verifier = _verifier(KeyServer(json.dumps({"keys": keys}).encode()))
    assert _reason(verifier, _mint()) == "key_unknown"


def test_missing_or_repeated_headers_are_refused(verifier: AssertionVerifier) -> None:
    reasons = []
    for values in ([], [_mint(), _mint()]):
        with pytest.raises(AssertionInvalid) as refused:
            verifier.verify_headers(values)
        reasons.append(refused.value.reason)
    assert reasons == ["assertion_missing", "assertion_ambiguous"]


def test_starlette_middleware(verifier: AssertionVerifier) -> None:
    def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"sub": identity_of(request).subject})

    def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/whoami", whoami), Route("/health", health)])
    app.add_middleware(AssertionMiddleware, verifier=verifier, exempt={"/health"})
    with TestClient(app) as client:
        good = client.get("/whoami", headers={"X-Hubgate-Assertion": _mint()})
        bad = client.get("/whoami", headers={"X-Hubgate-Assertion": _mint(OTHER, kid=KEY.kid)})
        health = client.get("/health")
    assert good.json() == {"sub": "member@acme.test"}
    assert (bad.status_code, bad.json()["error"]) == (401, "signature_invalid")
    assert health.json() == {"ok": True}  # exempt: no assertion asked


def test_fastapi_dependency(verifier: AssertionVerifier) -> None:
    app = FastAPI()

    @app.post("/predict")
    def predict(caller: UpstreamIdentity = Depends(verifier)) -> dict[str, str | None]:  # noqa: B008
        return {"sub": caller.subject, "act": caller.action}

    with TestClient(app) as client:
        good = client.post("/predict", headers={"X-Hubgate-Assertion": _mint()})
        missing = client.post("/predict")
    assert good.json() == {"sub": "member@acme.test", "act": "call"}
    assert missing.status_code == 401
    assert missing.json()["detail"].startswith("assertion_missing")


def test_a_token_verified_before_still_expires(server: KeyServer) -> None:
    """The cache of verified tokens saves the signature check, not the clock's."""
    now = [float(NOW)]
    verifier = _verifier(server, clock=lambda: now[0])
    token = _mint()
    assert verifier.verify(token) == verifier.verify(token)
    now[0] += 60 + verifier.leeway
    assert _reason(verifier, token) == "expired"


def test_a_hubgate_that_is_down_is_asked_at_most_once_per_window() -> None:
    """No keys held and none to be had: 503, without a fetch per request."""
    failures = [0]

    def down(request: httpx.Request) -> httpx.Response:
        failures[0] += 1
        raise httpx.ConnectError("refused", request=request)

    verifier = AssertionVerifier(
        HUBGATE, RESOURCE, client=httpx.Client(transport=httpx.MockTransport(down)),
        clock=lambda: NOW,
    )  # fmt: skip
    statuses = []
    for attempt in range(3):
        with pytest.raises(AssertionInvalid) as refused:
            verifier.verify(_mint(jti=f"j{attempt}"))
        statuses.append((refused.value.reason, refused.value.status))
    assert statuses == [("jwks_unavailable", 503)] * 3
    assert failures == [1]
