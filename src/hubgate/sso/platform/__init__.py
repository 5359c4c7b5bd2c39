"""Platform sign-in providers: hub-wide OpenID Providers (Google, GitLab,
Microsoft personal accounts, ...) that sign people in to their OWN hubgate
accounts, as a password would. They are never an org's SSO: a sign-in through
one holds no SSO authentication and makes nothing fresh for any org.

- :mod:`.rules`: which account an answer signs in to (pure);
- :mod:`.providers`: the operator's configuration (secret sealed at rest);
- :mod:`.signin`: start and callback around the OIDC relying-party code.
"""
