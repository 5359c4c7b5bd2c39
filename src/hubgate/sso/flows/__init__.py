"""A sign-in from start to finish: ``started`` (the pending request, bound to the
browser), ``saml`` and ``oidc`` (spend the one-time state, verify, in their own short
transactions; OIDC's network calls outside any), ``signin`` (the service the web
layer calls: verified identity -> the policy's transaction -> signed in or refused)."""
