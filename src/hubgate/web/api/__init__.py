"""The JSON API under ``/api/v1``, one module per resource. Thin routes: each calls
one service function in one transaction and answers a response model.

``ROUTERS`` is the order ``create_app`` includes them in.
"""

from __future__ import annotations

from hubgate.web.api import (
    account_security,
    accounts,
    audit,
    audit_streams,
    deployment_routes,
    domains,
    members,
    orgs,
    resources,
    scim,
    sso_connections,
    sso_health,
    sso_metadata,
    sso_policy,
    teams,
    tokens,
)

__all__ = ["ROUTERS"]

ROUTERS = (
    accounts.router,
    account_security.router,
    tokens.router,
    orgs.router,
    members.router,
    teams.router,
    resources.router,
    deployment_routes.router,
    audit.router,
    audit_streams.router,
    sso_connections.router,
    sso_metadata.router,
    sso_policy.router,
    sso_health.router,
    domains.router,
    scim.router,
)
