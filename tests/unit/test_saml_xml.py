"""xml.Path stands in for ElementPath's ``findall``/``find`` in the verification
pipeline; it must find exactly what they find, in the same order."""

from __future__ import annotations

from hubgate.sso.saml.xml import NS, Path, parse

DOCUMENT = f"""<samlp:Response xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}">
  <saml:Assertion ID="a1">
    <saml:Subject>
      <saml:SubjectConfirmation Method="first">
        <saml:SubjectConfirmationData InResponseTo="r1"/>
        <saml:SubjectConfirmationData/>
      </saml:SubjectConfirmation>
      <other:SubjectConfirmation xmlns:other="urn:example:other" Method="decoy"/>
      <saml:SubjectConfirmation Method="second">
        <saml:SubjectConfirmationData InResponseTo="r2"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions><saml:SubjectConfirmation Method="nested"/></saml:Conditions>
  </saml:Assertion>
</samlp:Response>""".encode()


def test_a_path_finds_what_findall_finds_in_document_order() -> None:
    assertion = parse(DOCUMENT)[0]
    for expression in (
        "saml:Subject/saml:SubjectConfirmation",
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData",
        "saml:Conditions",
        "saml:AttributeStatement",
    ):
        path = Path(expression)
        assert path.all(assertion) == assertion.findall(expression, NS)
        assert path.first(assertion) is assertion.find(expression, NS)


def test_an_attribute_path_reads_present_values_only() -> None:
    assertion = parse(DOCUMENT)[0]
    path = Path("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData/@InResponseTo")
    assert path.values(assertion) == ["r1", "r2"]
    assert all(type(value) is str for value in path.values(assertion))
