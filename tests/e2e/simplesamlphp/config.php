<?php

/*
 * SimpleSAMLphp 1.19 configuration for hubgate's end-to-end tests.
 *
 * tests/e2e/idp.py copies this folder into a temporary config dir, points
 * SIMPLESAMLPHP_CONFIG_DIR at it and writes hubgate-e2e.json beside this file:
 * base URL, writable folders, salt, the signing key pair in use, the service
 * providers to trust and the users (authsources.php). PHP reads the
 * configuration on every request, so rewriting that JSON changes the running
 * IdP at once (new SP, cert rotation, a user added, changed or removed).
 */

$e2e = json_decode(file_get_contents(__DIR__ . '/hubgate-e2e.json'), true, 32, JSON_THROW_ON_ERROR);

$config = [
    // A whole URL: behind `php -S` nothing else tells SimpleSAMLphp its address.
    'baseurlpath' => $e2e['baseurl'] . '/',
    'certdir' => $e2e['certdir'] . '/',
    'loggingdir' => $e2e['tmpdir'] . '/log/',
    'datadir' => $e2e['tmpdir'] . '/data/',
    'tempdir' => $e2e['tmpdir'] . '/tmp/',
    'metadatadir' => __DIR__ . '/metadata/',

    'secretsalt' => $e2e['secretsalt'],
    'auth.adminpassword' => $e2e['adminpassword'],
    'technicalcontact_name' => 'hubgate e2e',
    'technicalcontact_email' => 'e2e@hubgate.test',
    'timezone' => 'UTC',

    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'trusted.url.domains' => [],
    'enable.http_post' => false,
    'assertion.allowed_clock_skew' => 180,

    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,

    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'statistics.out' => [],

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,

    'module.enable' => [
        'core' => true,
        'saml' => true,
        'exampleauth' => true,
        'admin' => true,
    ],

    // Plain HTTP on loopback: cookies must not be marked Secure, or no client
    // sends them back.
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => $e2e['tmpdir'] . '/sessions',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.httponly' => true,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.cookie.path' => '/',
    'session.cookie.lifetime' => 0,
    'session.duration' => 8 * 60 * 60,
    'session.datastore.timeout' => 4 * 60 * 60,
    'session.state.timeout' => 60 * 60,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.rememberme.enable' => false,

    'language.available' => ['en'],
    'language.default' => 'en',
    'language.cookie.secure' => false,

    'theme.use' => 'default',
    'template.cache' => $e2e['tmpdir'] . '/tmp/templates',
    'production' => false,

    'metadata.sources' => [
        ['type' => 'flatfile'],
    ],
    'metadata.sign.enable' => false,
    'proxy' => null,
];
