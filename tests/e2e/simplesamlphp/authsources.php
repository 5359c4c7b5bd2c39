<?php

/*
 * The IdP's users for hubgate's end-to-end tests (tests/e2e/idp.py USERS says
 * the same in Python). Attribute names are the ones hubgate maps by default:
 * email, displayName, groups; uid becomes the persistent NameID.
 */

$config = [
    'admin' => [
        'core:AdminPassword',
    ],

    'example-userpass' => [
        'exampleauth:UserPass',
        'alice:alicepass' => [
            'uid' => ['alice'],
            'email' => ['alice@acme.test'],
            'displayName' => ['Alice Admin'],
            'groups' => ['hubgate-admins', 'research'],
        ],
        'bob:bobpass' => [
            'uid' => ['bob'],
            'email' => ['bob@acme.test'],
            'displayName' => ['Bob Builder'],
            'groups' => ['research'],
        ],
    ],
];
