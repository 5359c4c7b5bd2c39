<?php

/*
 * The IdP itself. Its entity id is the conventional metadata URL; the key pair
 * it signs with is the one hubgate-e2e.json names (tests/e2e/idp.py switches
 * it for the certificate rotation test), and a next certificate, when named, is
 * published beside it before the IdP signs with it (a rollover).
 */

$e2e = json_decode(file_get_contents(dirname(__DIR__) . '/hubgate-e2e.json'), true, 32, JSON_THROW_ON_ERROR);

$metadata[$e2e['idp']['entity_id']] = [
    'host' => '__DEFAULT__',
    'privatekey' => $e2e['idp']['privatekey'],
    'certificate' => $e2e['idp']['certificate'],
    'auth' => 'example-userpass',

    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
    // Single logout: sign the IdP's LogoutRequest and LogoutResponse (hubgate
    // requires it), and require the SP's to be signed too.
    'sign.logout' => true,
    'validate.logout' => true,

    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
];
if (isset($e2e['idp']['new_certificate'])) {
    $metadata[$e2e['idp']['entity_id']]['new_certificate'] = $e2e['idp']['new_certificate'];
}
