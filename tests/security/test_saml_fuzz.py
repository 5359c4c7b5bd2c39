"""Hypothesis against ``verify_response``: whatever arrives in the SAMLResponse field,
the verifier either refuses it with a ``SamlError`` or returns an Identity, and
an Identity only for what the IdP really signed.

* random bytes, random text, random base64: always a SamlError;
* byte-level mutations of the valid response (flip, delete, insert markup): a
  SamlError, or exactly the original Identity (a mutation the signature does not
  cover, such as whitespace in the unsigned Response, may be accepted; a changed
  identity never);
* tree-level mutations (delete, duplicate, move, re-attribute, re-text
  elements), optionally re-signed by the IdP afterwards so that the checks behind
  the signature are exercised too: a SamlError, or an Identity whose subject is
  the whole text of the one signed NameID;
* hostile timestamps and values that the IdP signs.

Any other exception (TypeError, OverflowError, xmlsec.Error, lxml errors...)
fails the test: on a real ACS it would be a 500 instead of a clear refusal.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import xmlsec
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from lxml import etree

from hubgate.sso.identity import Identity
from hubgate.sso.saml.errors import SamlError
from hubgate.sso.saml.response import ResponseContext, verify_response
from tests.security.saml_forge import (
    NOW,
    NS,
    REQUEST_ID,
    SamlForge,
    config_for,
    encode,
    serialize,
    session_keys,
    sign,
)

KEYS = session_keys()
CONFIG = config_for(KEYS)
FORGE = SamlForge(KEYS)
VALID_XML = serialize(FORGE.tree())
CONTEXT = ResponseContext(now=NOW, request_id=REQUEST_ID)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(encoded: str | bytes) -> Identity | SamlError:
    """Verify; a SamlError is an answer, any other exception propagates (and fails)."""
    try:
        return verify_response(encoded, CONFIG, CONTEXT, _Replay())
    except SamlError as refusal:
        return refusal


class _Replay:
    def first_use(self, key: str, expires_at: datetime) -> bool:
        return True


BASELINE = outcome(encode(VALID_XML))
assert isinstance(BASELINE, Identity), BASELINE


def same_identity(found: Identity) -> bool:
    keys = ("subject", "email", "display_name", "groups", "attributes")
    return all(getattr(found, key) == getattr(BASELINE, key) for key in keys)


# --- random input ---------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=3000), st.text(max_size=3000)))
def test_random_input_is_refused(value: bytes | str) -> None:
    assert isinstance(outcome(value), SamlError)


@FUZZ
@given(st.binary(max_size=3000))
def test_random_base64_is_refused(raw: bytes) -> None:
    assert isinstance(outcome(base64.b64encode(raw)), SamlError)


XMLISH = st.sampled_from(
    [
        b"<",
        b">",
        b"&",
        b'"',
        b"<!---->",
        b"<!DOCTYPE x>",
        b"&amp;",
        b"&#0;",
        b"&#x10FFFF;",
        b"<![CDATA[x]]>",
        b"<?pi x?>",
        b"\x00",
        b"\xff\xfe",
        b"\xc3",
        b' xml:id="x"',
        b' ID="x"',
        b"<saml:Assertion>",
        b"</saml:Assertion>",
        b"<ds:Signature/>",
        b'<x:y xmlns:x="urn:x"/>',
    ]
)


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID_XML)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "delete", "insert", "markup", "duplicate"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "markup":
            data[position:position] = draw(XMLISH)
        else:
            end = min(len(data), position + draw(st.integers(1, 400)))
            data[end:end] = data[position:end]
    return bytes(data)


@FUZZ
@given(mutated_bytes())
def test_mutated_bytes_never_change_who_signs_in(document: bytes) -> None:
    found = outcome(encode(document))
    assert isinstance(found, SamlError) or same_identity(found), found


@FUZZ
@given(st.data())
def test_mutated_base64_is_refused_or_unchanged(data: st.DataObject) -> None:
    encoded = bytearray(encode(VALID_XML).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] = data.draw(st.sampled_from(b"AZaz09+/=!-_ \n\x00\xff"))
    found = outcome(bytes(encoded))
    assert isinstance(found, SamlError) or same_identity(found), found


# --- tree mutations ---------------------------------------------------------------------

XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
)
ATTRIBUTE_NAMES = st.sampled_from(
    [
        "ID",
        "{http://www.w3.org/XML/1998/namespace}id",
        "Id",
        "Destination",
        "InResponseTo",
        "Recipient",
        "NotBefore",
        "NotOnOrAfter",
        "IssueInstant",
        "Method",
        "Algorithm",
        "URI",
        "Value",
        "Name",
        "Format",
    ]
)
NEW_TAGS = st.sampled_from(
    [
        f"{{{NS[prefix]}}}{name}"
        for prefix, name in (
            ("saml", "Assertion"),
            ("saml", "EncryptedAssertion"),
            ("saml", "NameID"),
            ("saml", "Advice"),
            ("samlp", "Response"),
            ("samlp", "Extensions"),
            ("ds", "Signature"),
            ("ds", "Object"),
            ("ds", "Reference"),
            ("ds", "Transform"),
            ("xenc", "EncryptedData"),
        )
    ]
    + ["{urn:evil}Assertion"]
)


def _elements(root: etree._Element) -> list[Any]:
    return [node for node in root.iter() if isinstance(node.tag, str)]


def _mutate(data: st.DataObject, root: etree._Element) -> None:
    elements = _elements(root)
    node = data.draw(st.sampled_from(elements))
    operation = data.draw(
        st.sampled_from(["delete", "duplicate", "move", "attribute", "text", "new-child"])
    )
    parent = node.getparent()
    if operation == "delete" and parent is not None:
        parent.remove(node)
    elif operation == "duplicate" and parent is not None:
        node.addnext(copy.deepcopy(node))
    elif operation == "move" and parent is not None:
        inside = set(node.iter())
        targets = [e for e in elements if e not in inside]
        data.draw(st.sampled_from(targets)).insert(data.draw(st.integers(0, 3)), node)
    elif operation == "attribute":
        known = [e.get("ID") for e in elements if e.get("ID")]  # ID confusion
        node.set(data.draw(ATTRIBUTE_NAMES), data.draw(XML_TEXT | st.sampled_from(known)))
    elif operation == "text":
        node.text = data.draw(XML_TEXT)
    elif operation == "new-child":
        child = etree.SubElement(node, data.draw(NEW_TAGS))
        child.text = data.draw(XML_TEXT)


def _resign(root: etree._Element) -> etree._Element:
    """The IdP signs the (mutated) first Assertion again, as if it had written it."""
    assertion = root.find(".//saml:Assertion", NS)
    if assertion is None or not assertion.get("ID"):
        return root
    for signature in assertion.findall("ds:Signature", NS):
        assertion.remove(signature)
    try:
        sign(assertion, KEYS.idp)
    except xmlsec.Error:  # e.g. a duplicated ID: the IdP could not have signed this
        pass
    return root


@FUZZ
@given(st.data(), st.booleans())
def test_mutated_trees_are_refused_or_verified_consistently(
    data: st.DataObject, resign: bool
) -> None:
    root = etree.fromstring(VALID_XML)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data, root)
    if resign:
        root = _resign(root)
    found = outcome(encode(root))
    if isinstance(found, SamlError):
        return
    if not resign:
        assert same_identity(found), found
    assertions = root.findall(".//saml:Assertion", NS)
    assert len(assertions) == 1
    name_id = assertions[0].find("saml:Subject/saml:NameID", NS)
    assert found.subject == "".join(name_id.itertext()).strip()


# --- hostile values the IdP signs -------------------------------------------------------

OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
INSTANTS = st.one_of(
    st.datetimes(timezones=OFFSETS).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    XML_TEXT,
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            field: INSTANTS
            for field in (
                "not_before",
                "not_on_or_after",
                "confirmation_not_on_or_after",
                "authn_instant",
                "session_not_on_or_after",
            )
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "name_id": XML_TEXT,
            "email": XML_TEXT,
            "display_name": XML_TEXT,
            "groups": st.lists(XML_TEXT, max_size=5).map(tuple),
            "status": XML_TEXT,
            "assertion_id": XML_TEXT.map(lambda s: "_" + s),
        },
    ),
)
def test_signed_hostile_values_are_refused_or_read_whole(
    times: dict[str, str], values: dict[str, Any]
) -> None:
    claims = FORGE.claims(times=times, **values)
    try:
        encoded = FORGE.response(claims)
    except xmlsec.Error:  # an ID xmlsec cannot sign: no IdP could send it
        reject()
    found = outcome(encoded)
    if isinstance(found, Identity):
        assert found.subject == claims.name_id.strip()
