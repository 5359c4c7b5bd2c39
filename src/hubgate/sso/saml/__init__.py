"""SAML 2.0 service provider: metadata, AuthnRequest, and Response verification
into an :class:`~hubgate.sso.identity.Identity`. Takes bytes, strings and
settings; imports neither the web framework nor the ORM."""
