"""The per-IdP guides: complete for every provider, and docs/idp-guides.md is
what they render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.sso import idp_guides
from hubgate.sso.idp_guides import GUIDES, SpValue, markdown

DOCS = Path(__file__).parents[2] / "docs" / "idp-guides.md"
SAML_VALUES = {SpValue.ENTITY_ID, SpValue.ACS_URL}


def test_docs_are_the_rendered_guides() -> None:
    assert DOCS.read_text() == markdown.render(), (
        "run: python -m hubgate.sso.idp_guides.markdown > docs/idp-guides.md"
    )


@pytest.mark.parametrize("slug", sorted(GUIDES))
def test_each_saml_guide_gives_the_idp_hubgates_entity_id_and_acs(slug: str) -> None:
    saml = GUIDES[slug].saml
    assert SAML_VALUES <= {s.fills for s in saml.settings}
    assert {a.carries for a in saml.attributes} == {"email", "name", "groups"}
    assert saml.bring_back and saml.docs.startswith("https://")


@pytest.mark.parametrize("slug", sorted(GUIDES))
def test_each_oidc_guide_registers_the_redirect_uri_or_says_why_there_is_none(
    slug: str,
) -> None:
    guide = GUIDES[slug]
    if guide.oidc is None:
        assert guide.no_oidc
        return
    assert SpValue.REDIRECT_URI in {s.fills for s in guide.oidc.settings}
    assert all(v.value.startswith(("redirect", "backchannel", "post_logout")) for v in
               {s.fills for s in guide.oidc.settings if s.fills})  # fmt: skip


def test_names_hubgate_reads_by_default() -> None:
    saml, oidc = idp_guides.read_by_default("saml"), idp_guides.read_by_default("oidc")
    assert "groups:memberOf" in saml and "name:displayName" in saml
    assert "name:http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name" not in saml
    assert oidc == {"email:email", "name:name", "groups:groups"}


def test_an_unknown_or_empty_name_finds_no_guide() -> None:
    assert idp_guides.find("okta") is GUIDES["okta"]
    assert idp_guides.find("") is None and idp_guides.find(None) is None
    assert idp_guides.find("__class__") is None
