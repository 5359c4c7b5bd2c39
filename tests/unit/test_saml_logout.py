"""SAML Single Logout protocol code (hubgate.sso.saml.logout and .bindings):
the messages this SP builds, the HTTP-Redirect binding both ways, and the
checks on the IdP's messages, without a server or a database. Time is frozen
at the forge's NOW; the attacks through HTTP are in tests/security."""

from __future__ import annotations

import base64
import zlib
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from hubgate.sso.saml import errors
from hubgate.sso.saml.bindings import (
    MAX_INFLATED,
    POST,
    REDIRECT,
    Received,
    encode_post,
    encode_redirect,
    received_by_post,
    received_by_redirect,
    verify_query_signature,
)
from hubgate.sso.saml.config import IdpSingleLogout, SamlConfig
from hubgate.sso.saml.keys import new_key_pair
from hubgate.sso.saml.logout import (
    PARTIAL_LOGOUT,
    RESPONDER,
    SUCCESS,
    LogoutStatus,
    NameIdentifier,
    logout_request,
    logout_response,
    verify_logout_request,
    verify_logout_response,
)
from hubgate.sso.saml.metadata import SingleLogoutService, certificate_body, parse_idp_metadata
from hubgate.sso.saml.signature import enveloped_signature, verify_enveloped
from hubgate.sso.saml.xml import parse
from tests.security.saml_forge import (
    EMAIL_FORMAT,
    NOW,
    NS,
    SLO_URL,
    LogoutClaims,
    MemoryReplay,
    build_logout_request,
    build_logout_response,
    config_for,
    post_value,
    redirect_query,
    session_keys,
)

IDP_SLO = "https://acme.okta.example/app/hubgate/slo/saml"
IDP_SLO_ANSWERS = "https://acme.okta.example/app/hubgate/slo/saml/answers"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


@pytest.fixture
def config() -> SamlConfig:
    return config_for(
        session_keys(), slo_url=SLO_URL,
        idp_slo=IdpSingleLogout(REDIRECT, IDP_SLO, IDP_SLO_ANSWERS),
    )  # fmt: skip


class Pending:
    def __init__(self, *ids: str) -> None:
        self.ids = set(ids)

    def spend(self, request_id: str) -> bool:
        if request_id not in self.ids:
            return False
        self.ids.remove(request_id)
        return True


def _query_of(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.query, parse_qs(parts.query)


def _xml_of(query: dict[str, list[str]], parameter: str) -> Any:
    packed = base64.b64decode(query[parameter][0])
    return etree.fromstring(zlib.decompress(packed, -15))


def _request(claims: LogoutClaims | None = None, **redirect: Any) -> Any:
    signer = redirect.pop("signer", session_keys().idp)
    return received_by_redirect(
        redirect_query(build_logout_request(claims or LogoutClaims()), signer, **redirect)
    )


# -- what this SP sends ---------------------------------------------------------------


def test_the_logout_request_names_the_person_as_the_idp_did(config: SamlConfig) -> None:
    """Core §3.7.1: ID, Version, IssueInstant, Destination, NotOnOrAfter, Issuer,
    the NameID with its Format and qualifiers as stored, the SessionIndex."""
    name_id = NameIdentifier("u-42", PERSISTENT, "https://idp.example", "https://sp.example")
    root = etree.fromstring(logout_request(config, "_r1", NOW, name_id, ("_s1",)))
    assert root.tag == f"{{{NS['samlp']}}}LogoutRequest"
    assert (root.get("ID"), root.get("Version"), root.get("Destination")) == ("_r1", "2.0", IDP_SLO)
    assert root.get("IssueInstant") == "2025-06-02T09:30:00Z"
    assert root.get("NotOnOrAfter") == "2025-06-02T09:35:00Z"
    assert root.findtext("saml:Issuer", namespaces=NS) == config.sp_entity_id
    found = root.find("saml:NameID", NS)
    assert found is not None and found.text == "u-42"
    assert (found.get("Format"), found.get("NameQualifier"), found.get("SPNameQualifier")) == (
        PERSISTENT, "https://idp.example", "https://sp.example",
    )  # fmt: skip
    assert [s.text for s in root.findall("samlp:SessionIndex", NS)] == ["_s1"]


def test_a_nameid_without_qualifiers_is_sent_without_them(config: SamlConfig) -> None:
    root = etree.fromstring(logout_request(config, "_r1", NOW, NameIdentifier("ada"), ()))
    found = root.find("saml:NameID", NS)
    assert found is not None and dict(found.attrib) == {}
    assert root.findall("samlp:SessionIndex", NS) == []


@pytest.mark.parametrize(
    ("status", "top", "second"),
    [
        (LogoutStatus.SUCCESS, SUCCESS, None),
        (LogoutStatus.PARTIAL, SUCCESS, PARTIAL_LOGOUT),
        (LogoutStatus.RESPONDER, RESPONDER, None),
    ],
)
def test_the_logout_response_status(
    config: SamlConfig, status: LogoutStatus, top: str, second: str | None
) -> None:
    """Core §3.7.3.2: PartialLogout is a second-level code under Success."""
    root = etree.fromstring(logout_response(config, "_a1", "_r9", NOW, status))
    assert (root.get("InResponseTo"), root.get("Destination")) == ("_r9", IDP_SLO_ANSWERS)
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None and code.get("Value") == top
    nested = code.find("samlp:StatusCode", NS)
    assert (nested.get("Value") if nested is not None else None) == second


def test_the_redirect_binding_signs_the_exact_octets_it_sends(config: SamlConfig) -> None:
    message = logout_request(config, "_r1", NOW, NameIdentifier("ada"), ())
    url = encode_redirect(
        IDP_SLO + "?tenant=acme", "SAMLRequest", message, "rs", config.sp_private_key
    )
    assert url.startswith(IDP_SLO + "?tenant=acme&SAMLRequest=")
    raw, query = _query_of(url)
    signed = raw.split("&", 1)[1].rsplit("&Signature=", 1)[0]
    assert signed.startswith("SAMLRequest=") and "&RelayState=rs&SigAlg=" in signed
    certificate = x509.load_pem_x509_certificate(config.sp_certificate.encode())
    signature = base64.b64decode(query["Signature"][0])
    certificate.public_key().verify(  # type: ignore[call-arg,union-attr]
        signature, signed.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert _xml_of(query, "SAMLRequest").get("ID") == "_r1"


def test_what_this_sp_sends_verifies_as_the_idp_would_receive_it(config: SamlConfig) -> None:
    message = logout_response(config, "_a1", "_r9", NOW, LogoutStatus.SUCCESS)
    url = encode_redirect(IDP_SLO, "SAMLResponse", message, None, config.sp_private_key)
    received = received_by_redirect(urlsplit(url).query)
    verify_query_signature(received, (config.sp_certificate,), NOW)
    assert received.parameter == "SAMLResponse" and received.relay_state is None
    with pytest.raises(errors.SignatureInvalid):
        verify_query_signature(received, (session_keys().idp.cert_pem,), NOW)


def test_a_redirect_signature_by_an_expired_certificate_is_refused_as_expired(
    config: SamlConfig,
) -> None:
    """As for an enveloped signature: the expired certificate verifies nothing, and
    the refusal says "expired" (the admin adds the new certificate) rather than
    "forged"; so does any signature once every certificate has expired."""
    old_key, old = new_key_pair("idp-old", NOW - timedelta(days=400), years=1)
    new_key, new = new_key_pair("idp-new", NOW - timedelta(days=1))
    message = logout_response(config, "_a1", "_r9", NOW, LogoutStatus.SUCCESS)

    def signed_by(key: str) -> Received:
        url = encode_redirect(IDP_SLO, "SAMLResponse", message, None, key)
        return received_by_redirect(urlsplit(url).query)

    verify_query_signature(signed_by(new_key), (old, new), NOW)
    verify_query_signature(signed_by(old_key), (old,), NOW - timedelta(days=60))  # then valid
    with pytest.raises(errors.IdpCertificateExpired):
        verify_query_signature(signed_by(old_key), (old, new), NOW)
    with pytest.raises(errors.IdpCertificateExpired):
        verify_query_signature(signed_by(new_key), (old,), NOW)
    with pytest.raises(errors.SignatureInvalid):
        verify_query_signature(signed_by(new_key), (session_keys().idp.cert_pem,), NOW)


# -- what the IdP sends ----------------------------------------------------------------


def test_a_signed_logout_request_by_redirect(config: SamlConfig) -> None:
    claims = LogoutClaims(session_indexes=("_s1", "_s2"))
    replay = MemoryReplay()
    verified = verify_logout_request(_request(claims, relay_state="r/1"), config, NOW, replay)
    assert verified.id == claims.message_id and verified.relay_state == "r/1"
    assert verified.name_id == NameIdentifier("ada.lovelace@acme.example", EMAIL_FORMAT)
    assert verified.session_indexes == ("_s1", "_s2")
    assert list(replay.seen) == [f"{config.connection_id}:{claims.message_id}"]


def test_a_signed_logout_request_by_post(config: SamlConfig) -> None:
    claims = LogoutClaims()
    value = post_value(build_logout_request(claims), session_keys().idp)
    received = received_by_post("SAMLRequest", value, None, 64 * 1024)
    verified = verify_logout_request(received, config, NOW, MemoryReplay())
    assert verified.id == claims.message_id and received.binding == POST


def test_an_ecdsa_query_signature_verifies_with_an_ec_certificate() -> None:
    keys = session_keys()
    config = config_for(keys, slo_url=SLO_URL, idp_certificates=(keys.idp_ec.cert_pem,))
    received = _request(signer=keys.idp_ec, sig_alg="ecdsa-sha256")
    assert verify_logout_request(received, config, NOW, MemoryReplay()).name_id.value


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        (LogoutClaims(issuer="https://evil.example/idp"), errors.IssuerMismatch),
        (LogoutClaims(issuer=None), errors.IssuerMismatch),
        (LogoutClaims(destination="https://hubgate.example/sso/saml/other/slo"), errors.DestinationMismatch),
        (LogoutClaims(destination=None), errors.DestinationMismatch),
        (LogoutClaims(not_on_or_after=timedelta(minutes=-3)), errors.LogoutExpired),
        (LogoutClaims(issued=NOW - timedelta(minutes=4)), errors.IssueInstantInvalid),
        (LogoutClaims(issued=NOW + timedelta(minutes=3)), errors.IssueInstantInvalid),
        (LogoutClaims(issue_instant="yesterday"), errors.MalformedResponse),
        (LogoutClaims(name_id=None), errors.NameIdInvalid),
        (LogoutClaims(name_id="x" * 1025), errors.NameIdInvalid),
        (LogoutClaims(session_indexes=tuple(f"_s{i}" for i in range(17))), errors.SessionIndexInvalid),
        (LogoutClaims(session_indexes=("",)), errors.SessionIndexInvalid),
        (LogoutClaims(message_id="x" * 300), errors.UnexpectedStructure),
    ],
    ids=[
        "other-issuer", "no-issuer", "other-destination", "no-destination", "expired",
        "issued-long-ago", "issued-in-the-future", "bad-instant", "no-nameid",
        "long-nameid", "many-session-indexes", "empty-session-index", "long-id",
    ],
)  # fmt: skip
def test_each_check_refuses_with_its_own_code(
    config: SamlConfig, claims: LogoutClaims, error: type[errors.SamlError]
) -> None:
    replay = MemoryReplay()
    with pytest.raises(error):
        verify_logout_request(_request(claims), config, NOW, replay)
    assert replay.seen == {}  # a refused message spends nothing


def test_a_replayed_logout_request_is_refused(config: SamlConfig) -> None:
    received, replay = _request(), MemoryReplay()
    verify_logout_request(received, config, NOW, replay)
    with pytest.raises(errors.LogoutReplayed):
        verify_logout_request(received, config, NOW, replay)


def test_an_unsigned_message_is_refused_by_either_binding(config: SamlConfig) -> None:
    with pytest.raises(errors.SignatureMissing):
        verify_logout_request(_request(signer=None), config, NOW, MemoryReplay())
    value = post_value(build_logout_request(LogoutClaims()), None)
    received = received_by_post("SAMLRequest", value, None, 64 * 1024)
    with pytest.raises(errors.SignatureMissing):
        verify_logout_request(received, config, NOW, MemoryReplay())


@pytest.mark.parametrize("sig_alg", ["rsa-sha1", "http://www.w3.org/2000/09/xmldsig#hmac-sha1", ""])
def test_a_sigalg_off_the_allow_list_is_refused(config: SamlConfig, sig_alg: str) -> None:
    with pytest.raises(errors.SignatureAlgorithm):
        verify_logout_request(_request(sig_alg=sig_alg), config, NOW, MemoryReplay())


def test_a_signature_by_another_key_is_refused(config: SamlConfig) -> None:
    for signer in (session_keys().attacker, session_keys().other_idp):
        with pytest.raises(errors.SignatureInvalid):
            verify_logout_request(_request(signer=signer), config, NOW, MemoryReplay())


def test_the_signature_covers_the_query_string_as_received(config: SamlConfig) -> None:
    """The same values encoded otherwise (lower-case escapes, ``/`` left bare) are
    other octets: the signature does not verify over them. The parameters' order
    in the URL is free: the octets are put in the order §3.4.4.1 fixes, from the
    values as received."""
    query = redirect_query(
        build_logout_request(LogoutClaims()), session_keys().idp, relay_state="a/b"
    )
    assert "RelayState=a%2Fb" in query
    for reencoded in (query.replace("a%2Fb", "a%2fb"), query.replace("a%2Fb", "a/b")):
        with pytest.raises(errors.SignatureInvalid):
            verify_logout_request(received_by_redirect(reencoded), config, NOW, MemoryReplay())
    first, *rest = query.split("&")
    reordered = "&".join([*rest, first])
    verified = verify_logout_request(received_by_redirect(reordered), config, NOW, MemoryReplay())
    assert verified.relay_state == "a/b"


def test_unknown_parameters_are_ignored_and_repeated_ones_refused(config: SamlConfig) -> None:
    query = redirect_query(build_logout_request(LogoutClaims()), session_keys().idp)
    verify_logout_request(received_by_redirect("x=1&" + query), config, NOW, MemoryReplay())
    with pytest.raises(errors.BindingInvalid):
        received_by_redirect(query + "&SigAlg=" + quote("urn:x"))
    with pytest.raises(errors.BindingInvalid):
        received_by_redirect(query + "&SAMLResponse=AAAA")


def test_a_deflate_bomb_is_cut_off() -> None:
    """Some 20 KB of query string that would inflate to 16 MB stop at the bound;
    so does a message just over it."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(b"<a>" + b" " * (16 * 1024 * 1024)) + deflater.flush()
    value = quote(base64.b64encode(packed).decode(), safe="")
    assert len(value) < 32 * 1024
    with pytest.raises(errors.InflatedTooLarge):
        received_by_redirect(f"SAMLRequest={value}")
    packed = zlib.compress(b" " * (MAX_INFLATED + 1), 9)[2:-4]
    with pytest.raises(errors.InflatedTooLarge):
        received_by_redirect("SAMLRequest=" + quote(base64.b64encode(packed).decode(), safe=""))


@pytest.mark.parametrize(
    "value", ["not base64!", base64.b64encode(b"not deflate at all").decode(),
              base64.b64encode(zlib.compress(b"<a/>")[2:-6]).decode()],
    ids=["base64", "deflate", "truncated"],
)  # fmt: skip
def test_a_malformed_message_is_refused(value: str) -> None:
    with pytest.raises(errors.MalformedResponse):
        received_by_redirect("SAMLRequest=" + quote(value, safe=""))


def test_a_request_in_the_response_parameter_is_refused(config: SamlConfig) -> None:
    query = redirect_query(
        build_logout_request(LogoutClaims()), session_keys().idp, parameter="SAMLResponse"
    )
    with pytest.raises(errors.UnexpectedStructure):
        verify_logout_response(received_by_redirect(query), config, NOW, MemoryReplay(), Pending())


def test_a_wrapped_signature_is_refused(config: SamlConfig) -> None:
    """A signed LogoutRequest moved inside another one (XSW): two IDs alike, or
    a signature below the root, is refused before any signature is checked."""
    signed = build_logout_request(LogoutClaims(message_id="_real"))
    post_value(signed, session_keys().idp)
    outer = build_logout_request(LogoutClaims(message_id="_real", name_id="bob@acme.example"))
    outer.append(etree.fromstring(etree.tostring(signed)))
    received = received_by_post("SAMLRequest", post_value(outer, None), None, 64 * 1024)
    with pytest.raises(errors.SignatureReference):
        verify_logout_request(received, config, NOW, MemoryReplay())


# -- the IdP's answer to ours ----------------------------------------------------------


def _answer(claims: LogoutClaims) -> Any:
    return received_by_redirect(
        redirect_query(build_logout_response(claims), session_keys().idp, parameter="SAMLResponse")
    )


def test_a_logout_response_spends_its_pending_request(config: SamlConfig) -> None:
    pending = Pending("_mine")
    verified = verify_logout_response(
        _answer(LogoutClaims(in_response_to="_mine")), config, NOW, MemoryReplay(), pending
    )
    assert verified.success and not verified.partial and pending.ids == set()
    partial = LogoutClaims(in_response_to="_two", second_status=PARTIAL_LOGOUT)
    verified = verify_logout_response(
        _answer(partial), config, NOW, MemoryReplay(), Pending("_two")
    )
    assert verified.success and verified.partial


@pytest.mark.parametrize("in_response_to", [None, "_unknown"])
def test_a_logout_response_to_no_pending_request_is_refused(
    config: SamlConfig, in_response_to: str | None
) -> None:
    pending, replay = Pending("_mine"), MemoryReplay()
    with pytest.raises(errors.LogoutNotPending):
        verify_logout_response(
            _answer(LogoutClaims(in_response_to=in_response_to)), config, NOW, replay, pending
        )
    assert pending.ids == {"_mine"} and replay.seen == {}


def test_a_failed_logout_response_is_verified_and_reported(config: SamlConfig) -> None:
    claims = replace(LogoutClaims(in_response_to="_mine"), status=RESPONDER)
    verified = verify_logout_response(
        _answer(claims), config, NOW, MemoryReplay(), Pending("_mine")
    )
    assert not verified.success and verified.status == RESPONDER
    assert verified.id == claims.message_id and verified.in_response_to == "_mine"


def test_the_post_binding_signs_the_message_enveloped(config: SamlConfig) -> None:
    """Bindings §3.5.4: what this SP posts carries an enveloped signature that the
    sign-in's own checks (shape, algorithm, reference) accept with the SP key."""
    message = logout_response(config, "_a2", "_r9", NOW, LogoutStatus.PARTIAL)
    root = parse(base64.b64decode(encode_post(message, config.sp_private_key)))
    signature = enveloped_signature(root)
    assert signature is not None and signature.getprevious() is root.find("saml:Issuer", NS)
    verify_enveloped(root, signature, (config.sp_certificate,), NOW)
    with pytest.raises(errors.SignatureInvalid):
        verify_enveloped(root, signature, (session_keys().idp.cert_pem,), NOW)


# -- the IdP's metadata ----------------------------------------------------------------

SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"


def _metadata(*services: tuple[str, str, str | None]) -> bytes:
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    entity = etree.Element(f"{{{md}}}EntityDescriptor", nsmap={"md": md, "ds": NS["ds"]})
    entity.set("entityID", IDP_SLO)
    idp = etree.SubElement(entity, f"{{{md}}}IDPSSODescriptor")
    key = etree.SubElement(idp, f"{{{md}}}KeyDescriptor", use="signing")
    data = etree.SubElement(
        etree.SubElement(key, f"{{{NS['ds']}}}KeyInfo"), f"{{{NS['ds']}}}X509Data"
    )
    etree.SubElement(data, f"{{{NS['ds']}}}X509Certificate").text = certificate_body(
        session_keys().idp.cert_pem
    )
    for binding, location, answers in services:
        service = etree.SubElement(
            idp, f"{{{md}}}SingleLogoutService", Binding=binding, Location=location
        )
        if answers is not None:
            service.set("ResponseLocation", answers)
    etree.SubElement(idp, f"{{{md}}}SingleSignOnService", Binding=REDIRECT, Location=IDP_SLO)
    return etree.tostring(entity)


def test_the_idps_single_logout_service_from_its_metadata() -> None:
    """Metadata §2.2.2: HTTP-Redirect preferred, HTTP-POST taken, SOAP ignored."""
    both = _metadata((SOAP, "https://idp/soap", None), (POST, "https://idp/post", None),
                     (REDIRECT, "https://idp/redirect", "https://idp/answers"))  # fmt: skip
    assert parse_idp_metadata(both).single_logout == SingleLogoutService(
        REDIRECT, "https://idp/redirect", "https://idp/answers"
    )
    post_only = parse_idp_metadata(_metadata((POST, "https://idp/post", None)))
    assert post_only.single_logout == SingleLogoutService(POST, "https://idp/post", None)
    assert parse_idp_metadata(_metadata((SOAP, "https://idp/soap", None))).single_logout is None


@pytest.mark.parametrize(
    "location", ["javascript:alert(1)", "https://idp/slo\nX-Injected: 1", "https://" + "a" * 3000]
)
def test_an_unusable_single_logout_url_makes_the_metadata_invalid(location: str) -> None:
    with pytest.raises(errors.MalformedResponse):
        parse_idp_metadata(_metadata((REDIRECT, location, None)))
