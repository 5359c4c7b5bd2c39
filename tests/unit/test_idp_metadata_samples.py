"""Each IdP's real metadata shape (SAML metadata §2.4.3) reads into entity id,
HTTP-Redirect SSO URL, signing certificates and SingleLogoutService.

The samples under ``idp_metadata/`` follow each vendor's documented format, with
self-made certificates whose common name names the sample; the ids and hosts are
invented."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hubgate.sso.saml.metadata import (
    POST,
    REDIRECT,
    InvalidMetadata,
    SingleLogoutService,
    parse_idp_metadata,
)

SAMPLES = Path(__file__).parent / "idp_metadata"
ENTRA_TENANT = "https://login.microsoftonline.com/7f3c1e2a-0b4d-4c5e-9a8b-0c0ffee00001"
OKTA_APP = "https://acme.okta.com/app/acme_hubgate_1/exk9hubgate0test0x697"
ONELOGIN = "https://acme.onelogin.com/trust/saml2/http-redirect"
KEYCLOAK = "https://kc.acme.example/realms/acme"
AUTHENTIK = "https://auth.acme.example/application/saml/hubgate"


@dataclass(frozen=True)
class Expected:
    entity_id: str
    sso_url: str
    certificates: tuple[str, ...]
    """The common names of the signing certificates, in order."""
    single_logout: SingleLogoutService | None


EXPECTED = {
    "okta": Expected(
        "http://www.okta.com/exk9hubgate0test0x697", f"{OKTA_APP}/sso/saml", ("okta",),
        SingleLogoutService(REDIRECT, f"{OKTA_APP}/slo/saml"),
    ),
    "entra": Expected(
        "https://sts.windows.net/7f3c1e2a-0b4d-4c5e-9a8b-0c0ffee00001/",
        f"{ENTRA_TENANT}/saml2", ("entra-current", "entra-next"),
        SingleLogoutService(REDIRECT, f"{ENTRA_TENANT}/saml2"),
    ),
    "google": Expected(
        "https://accounts.google.com/o/saml2?idpid=C00hubgate",
        "https://accounts.google.com/o/saml2/idp?idpid=C00hubgate", ("google",), None,
    ),
    "onelogin": Expected(
        "https://app.onelogin.com/saml/metadata/0f9a1c2e-hubg-4ate-test-000000000001",
        f"{ONELOGIN}/sso/0f9a1c2e-hubg-4ate-test-000000000001", ("onelogin",),
        SingleLogoutService(REDIRECT, f"{ONELOGIN}/slo/1234567"),
    ),
    "jumpcloud": Expected(
        "jumpcloud-hubgate", "https://sso.jumpcloud.com/saml2/hubgate", ("jumpcloud",), None
    ),
    "keycloak": Expected(
        KEYCLOAK, f"{KEYCLOAK}/protocol/saml", ("keycloak",),
        SingleLogoutService(REDIRECT, f"{KEYCLOAK}/protocol/saml"),
    ),
    "authentik": Expected(
        "authentik", f"{AUTHENTIK}/sso/binding/redirect/", ("authentik",),
        SingleLogoutService(REDIRECT, f"{AUTHENTIK}/slo/binding/redirect/"),
    ),
}  # fmt: skip


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.xml").read_bytes()


def common_name(pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_every_sample_has_its_expectation() -> None:
    assert sorted(p.stem for p in SAMPLES.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_idp_metadata_of(name: str) -> None:
    expected, found = EXPECTED[name], parse_idp_metadata(sample(name))
    assert found.entity_id == expected.entity_id
    assert found.sso_url == expected.sso_url
    assert tuple(common_name(pem) for pem in found.certificates) == expected.certificates
    assert found.single_logout == expected.single_logout


def test_only_signing_keys_count() -> None:
    """authentik lists its encryption certificate too: it must never verify a response."""
    assert "authentik-encryption" not in map(
        common_name, parse_idp_metadata(sample("authentik")).certificates
    )


def test_entra_keys_come_from_the_idp_descriptor_only() -> None:
    """Entra repeats its keys in WS-Fed RoleDescriptors and an SPSSODescriptor, whose
    SingleLogoutService and keys are not the IdP's: take a key out of the
    IDPSSODescriptor and it is gone, though the other descriptors still hold it."""
    document = sample("entra").decode()
    idp = document.index("<IDPSSODescriptor")
    head, tail = document[:idp], document[idp:]
    next_key = tail.index('<KeyDescriptor use="signing">', tail.index("</KeyDescriptor>"))
    end = tail.index("</KeyDescriptor>", next_key) + len("</KeyDescriptor>")
    one_key = (head + tail[:next_key] + tail[end:]).encode()
    assert [common_name(p) for p in parse_idp_metadata(one_key).certificates] == ["entra-current"]


def test_a_post_only_slo_is_taken_when_no_redirect_is_offered() -> None:
    document = sample("authentik").replace(b"slo/binding/redirect/", b"slo/binding/post/")
    document = document.replace(
        b'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"',
        b'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP"',
    )
    assert parse_idp_metadata(document).single_logout == SingleLogoutService(
        POST, f"{AUTHENTIK}/slo/binding/post/"
    )


def test_a_sample_without_its_redirect_sso_is_refused() -> None:
    """Keycloak without the HTTP-Redirect binding (hubgate's AuthnRequest goes by
    redirect): POST, SOAP and Artifact do not stand in for it."""
    document = sample("keycloak").replace(
        b'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"',
        b'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"',
    )
    with pytest.raises(InvalidMetadata):
        parse_idp_metadata(document)
