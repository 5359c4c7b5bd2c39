"""A development identity provider for trying hubgate locally: a SAML 2.0 IdP
and an OpenID provider in one loopback-only process. NOT FOR PRODUCTION.

``hubgate dev-idp`` runs it (:mod:`hubgate.cli.devidp`); ``hubgate demo`` starts
it next to hubgate. hubgate's own protocol tests use SimpleSAMLphp and
oidc-provider, not this.
"""
