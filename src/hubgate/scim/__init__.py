"""SCIM 2.0 (RFC 7643, RFC 7644): the service provider an org's IdP provisions through."""
