<?php

/*
 * The IdP's users for hubgate's end-to-end tests, from hubgate-e2e.json
 * ("users": username, password and the attributes to assert), which
 * tests/e2e/idp.py writes (IdpInfo.set_user / remove_user) and PHP reads on
 * every request. Attribute names are the ones hubgate maps by default: email,
 * displayName, groups; uid becomes the persistent NameID.
 */

$e2e = json_decode(file_get_contents(__DIR__ . '/hubgate-e2e.json'), true, 32, JSON_THROW_ON_ERROR);

$users = ['exampleauth:UserPass'];
foreach ($e2e['users'] as $user) {
    $users[$user['username'] . ':' . $user['password']] = $user['attributes'];
}

$config = [
    'admin' => [
        'core:AdminPassword',
    ],

    'example-userpass' => $users,
];
