"""SAML metadata refresh against a real IdP (issue 22 item 2): SimpleSAMLphp
announces a new signing key in its metadata, then signs with it; ``hubgate sso
connection refresh`` picks each step up from the metadata URL, and real sign-ins
go through the whole rollover, after which the old key is retired."""

from __future__ import annotations

from hubgate.sso.saml.keys import certificate_fingerprint
from tests.e2e.idp import USERS
from tests.e2e.test_saml_simplesamlphp import (  # noqa: F401 - saml is the fixture
    ORG,
    Saml,
    assert_identity,
    error_of,
    identity_of,
    post_to_acs,
    saml,
    sp_initiated,
)


def _refresh(hub: Saml, connection_id: int) -> dict[str, object]:
    done = hub.cli_json("sso", "connection", "refresh", str(connection_id))
    assert isinstance(done, dict), done
    return done


def _audited(hub: Saml, action: str) -> list[dict[str, object]]:
    events = hub.cli_json("audit", "--org", ORG, "--action", action)
    assert isinstance(events, list), events
    return [event["data"] for event in reversed(events)]


def test_a_signing_key_rollover_is_followed_by_refresh_without_a_failed_sign_in(
    saml: Saml,  # noqa: F811 - the fixture
) -> None:
    connection = saml.add_connection()
    old, new = (certificate_fingerprint(pem) for pem in saml.idp.certificates_pem[:2])
    alice = USERS["alice"]

    def sign_in() -> None:
        browser = saml.browser()
        answered = post_to_acs(browser, sp_initiated(saml, browser, connection, alice))
        assert_identity(identity_of(answered), alice, connection)

    sign_in()
    saml.idp.announce_signing_cert(1)  # published beside the old key
    announced = _refresh(saml, connection.id)
    assert (announced["result"], announced["added"], announced["retiring"]) == (
        "changed", [new], []
    )  # fmt: skip
    sign_in()  # still signed with the old key

    saml.idp.use_signing_cert(1)  # the IdP switches; its metadata lists the new key only
    switched = _refresh(saml, connection.id)
    assert (switched["result"], switched["added"], switched["retiring"]) == (
        "changed", [], [old]
    )  # fmt: skip
    sign_in()  # the new key signs: the old one retires
    assert [e["certificate"] for e in saml.verified_identities()] == [old, old, new]
    assert _audited(saml, "sso.certificates_retired") == [{"retired": [old], "verified_by": new}]

    saml.idp.use_signing_cert(0)  # a response signed with the retired key is refused
    browser = saml.browser()
    fields = sp_initiated(saml, browser, connection, alice)
    assert error_of(post_to_acs(browser, fields)) == "saml_signature_invalid"
    refreshed = _audited(saml, "sso.metadata_refreshed")
    assert [(e["added"], e["retiring"]) for e in refreshed] == [([new], []), ([], [old])]
