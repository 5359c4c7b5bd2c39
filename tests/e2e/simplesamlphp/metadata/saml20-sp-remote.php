<?php

/*
 * The service providers the IdP answers, from hubgate-e2e.json:
 *
 * - "sps": entity id ({base}/sso/saml/{id}/metadata) and ACS URL, as an IdP
 *   admin would type them in, and, when given, the SingleLogoutService URL
 *   ({base}/sso/saml/{id}/slo, HTTP-Redirect) and the SP's signing certificate
 *   (the IdP checks the signature of the SP's logout messages);
 * - "sp_xml": SP metadata documents as hubgate publishes them, read the way
 *   SimpleSAMLphp reads any SP's metadata (so AuthnRequestsSigned, the
 *   NameIDFormat and the SP certificates there take effect).
 *
 * Either way the NameID is a stable attribute: uid (persistent), or email when
 * the SP asks for emailAddress.
 */

$e2e = json_decode(file_get_contents(dirname(__DIR__) . '/hubgate-e2e.json'), true, 32, JSON_THROW_ON_ERROR);

$emailFormat = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
$persistentFormat = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

foreach ($e2e['sps'] as $sp) {
    $metadata[$sp['entity_id']] = [
        'AssertionConsumerService' => [
            [
                'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
                'Location' => $sp['acs_url'],
                'index' => 0,
            ],
        ],
        'NameIDFormat' => $persistentFormat,
        'simplesaml.nameidattribute' => 'uid',
        'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
        'validate.authnrequest' => false,
    ];
    if (isset($sp['slo_url'])) {
        $metadata[$sp['entity_id']]['SingleLogoutService'] = [
            [
                'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
                'Location' => $sp['slo_url'],
            ],
        ];
    }
    if (isset($sp['certificate'])) {
        $metadata[$sp['entity_id']]['certData'] = $sp['certificate'];
    }
}

foreach ($e2e['sp_xml'] ?? [] as $xml) {
    foreach (\SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($xml) as $entityId => $parsed) {
        $sp = $parsed->getMetadata20SP();
        if ($sp === null) {
            continue;
        }
        $format = $sp['NameIDFormat'] ?? $persistentFormat;
        $sp['simplesaml.nameidattribute'] = $format === $emailFormat ? 'email' : 'uid';
        $sp['signature.algorithm'] = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
        $metadata[$entityId] = $sp;
    }
}
