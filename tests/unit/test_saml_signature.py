"""The IdP's public key is loaded once per certificate and kept (signature.py's
``_key``); these tests pin what that cache must never do: lend one certificate's
key to another, or keep trusting a certificate the connection no longer lists."""

from __future__ import annotations

import pytest

from hubgate.sso.saml import errors
from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.response import ResponseContext, verify_response
from hubgate.sso.saml.signature import _key
from tests.security.saml_forge import (
    NOW,
    REQUEST_ID,
    Credential,
    Keys,
    MemoryReplay,
    SamlForge,
    config_for,
    session_keys,
)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return session_keys()


@pytest.fixture
def forge(keys: Keys) -> SamlForge:
    return SamlForge(keys)


def _trusting(keys: Keys, *trusted: Credential) -> SamlConfig:
    return config_for(keys, idp_certificates=tuple(c.cert_pem for c in trusted))


def _accepts(config: SamlConfig, encoded: str) -> bool:
    context = ResponseContext(now=NOW, request_id=REQUEST_ID)
    try:
        verify_response(encoded, config, context, MemoryReplay())
    except errors.SignatureInvalid:
        return False
    return True


def test_a_key_cached_for_one_certificate_is_not_used_for_another(
    forge: SamlForge, keys: Keys
) -> None:
    """Both keys are cached after the first two checks; each still verifies only
    what its own key signed."""
    by_idp, by_other = forge.response(), forge.response(signer=keys.other_idp)
    assert _accepts(_trusting(keys, keys.idp), by_idp)
    assert _accepts(_trusting(keys, keys.other_idp), by_other)
    assert not _accepts(_trusting(keys, keys.other_idp), by_idp)
    assert not _accepts(_trusting(keys, keys.idp), by_other)


def test_a_rotated_certificate_is_honoured(forge: SamlForge, keys: Keys) -> None:
    """Before the rotation the old key signs; after it (the connection lists only the
    new certificate) the old key's cached entry is never consulted."""
    by_old, by_new = forge.response(), forge.response(signer=keys.idp_next)
    before, after = _trusting(keys, keys.idp), _trusting(keys, keys.idp_next)
    assert _accepts(before, by_old) and not _accepts(before, by_new)
    assert _accepts(after, by_new) and not _accepts(after, by_old)


def test_the_cache_is_keyed_by_the_whole_certificate(keys: Keys) -> None:
    """One entry per certificate text: the same PEM gives the same loaded key, another
    PEM its own, and a certificate that does not load is refused, never cached away."""
    assert _key(keys.idp.cert_pem) is _key(keys.idp.cert_pem)
    assert _key(keys.idp.cert_pem) is not _key(keys.idp_next.cert_pem)
    broken = keys.idp.cert_pem.replace("MII", "MIJ", 1)
    for _ in range(2):
        with pytest.raises(errors.SignatureInvalid):
            _key(broken)
