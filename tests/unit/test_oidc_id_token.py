"""id_token validation against the OpenID Foundation's basic RP certification
checks and RFC 8725 attacks, with tokens signed here (a provider we control)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from hubgate.sso.oidc import errors
from hubgate.sso.oidc.id_token import (
    ALLOWED_ALGORITHMS,
    Expected,
    protected_header,
    validate_id_token,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ISSUER = "https://idp.acme.example"
CLIENT = "hubgate-acme"
NONCE = "n-0S6_WzA2Mj"
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
RSA_NEXT = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
ATTACKER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EXPECTED = Expected(ISSUER, CLIENT, NONCE, frozenset(ALLOWED_ALGORITHMS), NOW)


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER, "sub": "00u1acme", "aud": CLIENT, "nonce": NONCE,
        "iat": int(NOW.timestamp()) - 5, "exp": int(NOW.timestamp()) + 300,
        "email": "ada@acme.example", "email_verified": True,
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# Lets the tests sign a header with an extension the validator must not know.
PERMISSIVE = JWSRegistry(header_registry={"exp2": HeaderParameter("test extension", "int")})


def signed(payload: dict[str, Any], key: Any = RSA, **header: Any) -> str:
    head = {"alg": "RS256", "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, payload, key, algorithms=[head["alg"]], registry=PERMISSIVE)


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


def keyset(*keys: Any) -> KeySet:
    return KeySet(list(keys) or [RSA, RSA_NEXT, EC])


def test_a_valid_rs256_token_is_accepted() -> None:
    assert validate_id_token(signed(claims()), keyset(), EXPECTED)["sub"] == "00u1acme"


def test_es256_and_rotation_to_the_next_key_are_accepted() -> None:
    assert validate_id_token(signed(claims(), EC, alg="ES256"), keyset(), EXPECTED)
    assert validate_id_token(signed(claims(), RSA_NEXT), keyset(), EXPECTED)


def test_kid_absent_with_a_single_key_is_accepted_and_with_several_refused() -> None:
    token = signed(claims(), RSA, kid=None)
    assert validate_id_token(token, keyset(RSA), EXPECTED)
    with pytest.raises(errors.KeyNotFound):
        validate_id_token(token, keyset(RSA, RSA_NEXT), EXPECTED)


def hs256_with_the_public_key() -> str:
    """The classic key confusion: HMAC keyed with the provider's public key PEM
    (built by hand: joserfc refuses to make such a key)."""
    head = unsigned(claims(), {"alg": "HS256", "kid": "rsa-1"})[:-1]
    mac = hmac.new(RSA.as_pem(private=False), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(signed(claims(iss="https://evil.example")), errors.IssuerMismatch, id="invalid-iss"),
        pytest.param(signed(claims(sub=None)), errors.SubjectMissing, id="missing-sub"),
        pytest.param(signed(claims(sub="")), errors.SubjectMissing, id="empty-sub"),
        pytest.param(signed(claims(aud="someone-else")), errors.AudienceMismatch, id="invalid-aud"),
        pytest.param(signed(claims(aud=[CLIENT, "other"])), errors.AudienceMismatch, id="several-aud-no-azp"),
        pytest.param(signed(claims(aud=[CLIENT, "other"], azp="other")), errors.AudienceMismatch, id="azp-mismatch"),
        pytest.param(signed(claims(iat=None)), errors.TokenTimeInvalid, id="missing-iat"),
        pytest.param(signed(claims(iat=int((NOW - timedelta(days=7)).timestamp()))), errors.TokenTimeInvalid, id="week-old-iat"),
        pytest.param(signed(claims(iat=int((NOW + timedelta(hours=1)).timestamp()))), errors.TokenTimeInvalid, id="iat-in-future"),
        pytest.param(signed(claims(exp=int((NOW - timedelta(minutes=5)).timestamp()))), errors.TokenExpired, id="expired"),
        pytest.param(signed(claims(exp=None)), errors.TokenExpired, id="missing-exp"),
        pytest.param(signed(claims(nbf=int((NOW + timedelta(hours=1)).timestamp()))), errors.TokenTimeInvalid, id="nbf-in-future"),
        pytest.param(signed(claims(exp="tomorrow")), errors.TokenTimeInvalid, id="exp-not-a-number"),
        pytest.param(signed(claims(nonce="other")), errors.NonceMismatch, id="wrong-nonce"),
        pytest.param(signed(claims(nonce=None)), errors.NonceMismatch, id="missing-nonce"),
        pytest.param(unsigned(claims(), {"alg": "none"}), errors.AlgorithmRefused, id="alg-none"),
        pytest.param(hs256_with_the_public_key(), errors.AlgorithmRefused, id="hs256-with-the-rsa-public-key"),
        pytest.param(signed(claims(), ATTACKER), errors.SignatureInvalid, id="invalid-signature"),
        pytest.param(signed(claims(), RSA, jku="https://evil.example/jwks"), errors.HeaderRefused, id="jku"),
        pytest.param(signed(claims(), RSA, x5u="https://evil.example/cert"), errors.HeaderRefused, id="x5u"),
        # joserfc refuses an embedded jwk while parsing the header, before any key is chosen
        pytest.param(signed(claims(), RSA, jwk=ATTACKER.as_dict(private=False)), errors.TokenMalformed, id="embedded-jwk"),
        pytest.param(signed(claims(), RSA, x5c=["MIIB"]), errors.HeaderRefused, id="x5c"),
        pytest.param(signed(claims(), RSA, crit=["exp2"], exp2=1), errors.HeaderRefused, id="unknown-crit"),
        pytest.param(signed(claims(), RSA, kid="ec-1"), errors.KeyNotFound, id="kid-of-another-key-type"),
        pytest.param(signed(claims(), RSA, kid="unknown"), errors.KeyNotFound, id="unknown-kid"),
        pytest.param("not.a.jwt", errors.TokenMalformed, id="garbage"),
        pytest.param("a" * 20000, errors.TokenMalformed, id="oversized"),
    ],
)  # fmt: skip
def test_refused(token: str, error: type[errors.OidcError]) -> None:
    with pytest.raises(error):
        validate_id_token(token, keyset(), EXPECTED)


def test_tampered_payload_fails_the_signature() -> None:
    header, _payload, signature = signed(claims()).split(".")
    forged = (
        base64.urlsafe_b64encode(json.dumps(claims(sub="admin")).encode()).rstrip(b"=").decode()
    )
    with pytest.raises(errors.SignatureInvalid):
        validate_id_token(f"{header}.{forged}.{signature}", keyset(), EXPECTED)


def test_a_connection_can_narrow_the_algorithms() -> None:
    narrow = Expected(ISSUER, CLIENT, NONCE, frozenset({"RS256"}), NOW)
    with pytest.raises(errors.AlgorithmRefused):
        validate_id_token(signed(claims(), EC, alg="ES256"), keyset(), narrow)


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


DEEP = b'{"a":' * 1200 + b"1" + b"}" * 1200
"""Deep enough that joserfc's ``json.loads`` would raise RecursionError (a 500)."""


def test_a_deeply_nested_header_is_refused_as_malformed() -> None:
    token = f"{_segment(DEEP)}.{_segment(json.dumps(claims()).encode())}.c2ln"
    with pytest.raises(errors.TokenMalformed, match="nests deeper"):
        validate_id_token(token, keyset(), EXPECTED)
    with pytest.raises(errors.TokenMalformed):
        protected_header(token)


def test_a_deeply_nested_payload_is_refused_though_its_signature_verifies() -> None:
    token = jws.serialize_compact({"alg": "RS256", "kid": RSA.kid}, DEEP, RSA)
    assert jws.deserialize_compact(token, RSA, algorithms=["RS256"]).payload == DEEP
    with pytest.raises(errors.TokenMalformed, match="nests deeper"):
        validate_id_token(token, keyset(), EXPECTED)
