"""The endpoints that machines call: identity providers (SAML ACS, OIDC callback,
SP metadata and keys), SCIM clients, and reverse proxies (forward-auth). Each
adapts HTTP to a framework-free protocol package and one service call."""
