"""OpenID Connect relying party: discovery, JWKS, the authorization code flow with
PKCE, and id_token validation into an :class:`~hubgate.sso.identity.Identity`.
Takes bytes, strings and settings; imports neither the web framework nor the ORM."""
