"""logout_token validation (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6),
with tokens signed here by a provider we control, and the attacks on it: an
id_token passed off as a logout token, key confusion, another provider's key,
stale and future tokens, encrypted or oversized ones."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from hubgate.sso.oidc import errors
from hubgate.sso.oidc.discovery import parse_discovery
from hubgate.sso.oidc.logout_token import (
    BACKCHANNEL_EVENT,
    MAX_AGE,
    MAX_TOKEN,
    LogoutExpected,
    key_id,
    validate_logout_token,
)

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SKEW = timedelta(seconds=120)
ISSUER = "https://idp.acme.example"
CLIENT = "hubgate-acme"
SECRET = "a-client-secret-long-enough-for-hmac-256"
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
OTHER_PROVIDER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EXPECTED = LogoutExpected(ISSUER, CLIENT, frozenset({"RS256", "ES256", "PS256"}), NOW, SKEW)


def at(instant: datetime) -> int:
    return int(instant.timestamp())


def claims(**changes: Any) -> dict[str, Any]:
    """A logout token as §2.4's example: iss, aud, iat, jti, events, sid and sub."""
    base = {
        "iss": ISSUER, "aud": CLIENT, "iat": at(NOW) - 5, "exp": at(NOW) + 120,
        "jti": "bWJq", "sub": "00u1acme", "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
        "events": {BACKCHANNEL_EVENT: {}},
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = RSA, **header: Any) -> str:
    head = {"alg": "RS256", "kid": key.kid, "typ": "logout+jwt", **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, payload, key, algorithms=[head["alg"]])


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'logout+jwt'})}.{part(payload)}."


def hs256_with_the_client_secret() -> str:
    """A token MACed with the client secret: valid HS256, but the connection
    allows only asymmetric algorithms, so the signature is never even tried."""
    key = OctKey.import_key(SECRET)
    return jwt.encode({"alg": "HS256", "kid": "rsa-1"}, claims(), key, algorithms=["HS256"])


def encrypted() -> str:
    """A JWE (five parts): hubgate registers no encryption key, so none is for it."""
    plaintext = signed(claims()).encode()
    header = {"alg": "RSA-OAEP", "enc": "A256GCM", "cty": "JWT"}
    return jwe.encrypt_compact(header, plaintext, RSA)


def test_a_valid_logout_token_names_the_sub_and_sid() -> None:
    verified = validate_logout_token(signed(claims()), KeySet([RSA, EC]), EXPECTED)
    assert verified.subject == "00u1acme"
    assert verified.session == "08a5019c-17e1-4977-8f42-65a12843ea02"
    assert verified.jti == "bWJq"
    assert verified.replay_until == datetime.fromtimestamp(at(NOW) - 5, UTC) + MAX_AGE + SKEW


def test_sid_alone_sub_alone_es256_and_an_untyped_token_are_accepted() -> None:
    keys = KeySet([RSA, EC])
    assert validate_logout_token(signed(claims(sub=None)), keys, EXPECTED).subject is None
    assert validate_logout_token(signed(claims(sid=None)), keys, EXPECTED).session is None
    assert validate_logout_token(signed(claims(), EC, alg="ES256"), keys, EXPECTED)
    assert validate_logout_token(signed(claims(), typ=None), keys, EXPECTED)
    assert validate_logout_token(signed(claims(exp=None)), keys, EXPECTED), "exp is optional"


def test_an_iat_just_inside_the_window_is_accepted() -> None:
    oldest = NOW - MAX_AGE - SKEW + timedelta(seconds=1)
    assert validate_logout_token(signed(claims(iat=at(oldest))), KeySet([RSA]), EXPECTED)


TOO_OLD = at(NOW - MAX_AGE - SKEW - timedelta(seconds=1))
FUTURE = at(NOW + SKEW + timedelta(seconds=5))


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(signed(claims(nonce="n-0S6_WzA2Mj")), errors.LogoutNoncePresent, id="nonce"),
        pytest.param(signed(claims(events=None)), errors.LogoutEventMissing, id="no-events"),
        pytest.param(signed(claims(events={})), errors.LogoutEventMissing, id="events-without-the-member"),
        pytest.param(signed(claims(events={BACKCHANNEL_EVENT: "logout"})), errors.LogoutEventMissing, id="member-not-an-object"),
        pytest.param(signed(claims(events={BACKCHANNEL_EVENT: []})), errors.LogoutEventMissing, id="member-an-array"),
        pytest.param(signed(claims(events=[BACKCHANNEL_EVENT])), errors.LogoutEventMissing, id="events-an-array"),
        pytest.param(signed(claims(sub=None, sid=None)), errors.LogoutSubjectMissing, id="neither-sid-nor-sub"),
        pytest.param(signed(claims(sub=42, sid=None)), errors.LogoutSubjectMissing, id="sub-not-a-string"),
        pytest.param(signed(claims(sid="s" * 300)), errors.LogoutSubjectMissing, id="sid-too-long"),
        pytest.param(signed(claims(jti=None)), errors.LogoutJtiMissing, id="no-jti"),
        pytest.param(signed(claims(sid="s\x00", sub=None)), errors.LogoutSubjectMissing, id="nul-in-sid"),
        pytest.param(signed(claims(jti="j\n1")), errors.LogoutJtiMissing, id="control-in-jti"),
        pytest.param(signed(claims(jti="j" * 300)), errors.LogoutJtiMissing, id="jti-too-long"),
        pytest.param(signed(claims(aud="someone-else")), errors.LogoutAudienceMismatch, id="wrong-aud"),
        pytest.param(signed(claims(aud=[CLIENT, "other"])), errors.LogoutAudienceMismatch, id="several-aud-no-azp"),
        pytest.param(signed(claims(azp="other")), errors.LogoutAudienceMismatch, id="azp-of-another"),
        pytest.param(signed(claims(iss="https://other-org-idp.example")), errors.LogoutIssuerMismatch, id="wrong-iss"),
        pytest.param(signed(claims(iss=ISSUER + "/")), errors.LogoutIssuerMismatch, id="iss-not-exactly"),
        pytest.param(unsigned(claims()), errors.LogoutAlgorithmRefused, id="alg-none"),
        pytest.param(hs256_with_the_client_secret(), errors.LogoutAlgorithmRefused, id="hs256-client-secret"),
        pytest.param(signed(claims(), OTHER_PROVIDER), errors.LogoutSignatureInvalid, id="another-providers-key"),
        pytest.param(signed(claims(), RSA, kid="unknown"), errors.LogoutKeyNotFound, id="unknown-kid"),
        pytest.param(signed(claims(), RSA, jku="https://evil.example/jwks"), errors.LogoutHeaderRefused, id="jku"),
        pytest.param(signed(claims(), RSA, typ="at+jwt"), errors.LogoutHeaderRefused, id="typ-of-an-access-token"),
        pytest.param(signed(claims(exp=at(NOW - timedelta(minutes=5)))), errors.LogoutTokenExpired, id="expired"),
        pytest.param(signed(claims(iat=TOO_OLD, exp=None)), errors.LogoutTimeInvalid, id="iat-too-old"),
        pytest.param(signed(claims(iat=FUTURE)), errors.LogoutTimeInvalid, id="iat-in-the-future"),
        pytest.param(signed(claims(iat=None)), errors.LogoutTimeInvalid, id="no-iat"),
        pytest.param(signed(claims(iat="now")), errors.LogoutTimeInvalid, id="iat-not-a-number"),
        pytest.param(signed(claims(blob="x" * MAX_TOKEN)), errors.LogoutTokenMalformed, id="oversized"),
        pytest.param(encrypted(), errors.LogoutTokenEncrypted, id="jwe"),
        pytest.param("", errors.LogoutTokenMalformed, id="empty"),
        pytest.param("not.a.jwt", errors.LogoutTokenMalformed, id="garbage"),
        pytest.param("a.b", errors.LogoutTokenMalformed, id="two-parts"),
    ],
)  # fmt: skip
def test_refused(token: str, error: type[errors.LogoutTokenInvalid]) -> None:
    with pytest.raises(error) as refused:
        validate_logout_token(token, KeySet([RSA, EC]), EXPECTED)
    assert refused.value.code.startswith("oidc_logout_") and refused.value.status == 400


def test_an_id_token_is_not_a_logout_token() -> None:
    """What a provider signs for sign-in (nonce, no events) never ends a session."""
    id_token = signed(claims(events=None, nonce="n", sid=None), typ="JWT")
    with pytest.raises(errors.LogoutEventMissing):
        validate_logout_token(id_token, KeySet([RSA]), EXPECTED)


def test_a_connection_can_narrow_the_algorithms() -> None:
    narrowed = LogoutExpected(ISSUER, CLIENT, frozenset({"ES256"}), NOW, SKEW)
    with pytest.raises(errors.LogoutAlgorithmRefused):
        validate_logout_token(signed(claims()), KeySet([RSA, EC]), narrowed)


def test_the_kid_is_read_before_any_key_and_a_malformed_token_costs_no_fetch() -> None:
    assert key_id(signed(claims())) == "rsa-1"
    assert key_id(signed(claims(), kid=None)) is None
    with pytest.raises(errors.LogoutTokenEncrypted):
        key_id(encrypted())
    with pytest.raises(errors.LogoutTokenMalformed):
        key_id("x" * (MAX_TOKEN + 1))
    with pytest.raises(errors.LogoutTokenMalformed):
        key_id("eyJhbGciOi.e30.sig")


def _discovery(**extra: Any) -> bytes:
    document = {
        "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks", **extra,
    }  # fmt: skip
    return json.dumps(document).encode()


def test_discovery_reads_the_logout_metadata() -> None:
    found = parse_discovery(
        _discovery(
            end_session_endpoint=f"{ISSUER}/logout", backchannel_logout_supported=True,
            backchannel_logout_session_supported=True,
        ),
        ISSUER,
    )  # fmt: skip
    assert found.end_session_endpoint == f"{ISSUER}/logout"
    assert found.backchannel_logout_supported and found.backchannel_logout_session_supported
    bare = parse_discovery(_discovery(backchannel_logout_supported="yes"), ISSUER)
    assert bare.end_session_endpoint is None and not bare.backchannel_logout_supported


@pytest.mark.parametrize(
    "endpoint", ["javascript:alert(1)", "/logout", 42, "https://" + "a" * 2100]
)
def test_discovery_refuses_an_unusable_end_session_endpoint(endpoint: object) -> None:
    with pytest.raises(errors.DiscoveryInvalid):
        parse_discovery(_discovery(end_session_endpoint=endpoint), ISSUER)
