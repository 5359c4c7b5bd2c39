"""Binding deployments to hosts and path prefixes: the service the API and the
CLI call, one transaction each (the caller's); every change audited.

Who may bind: whoever may ``deploy`` the deployment. A binding is matched
before the ``/{org}/{kind}s/{name}`` path rules, so what may be bound is limited
so that it never captures requests meant for something else:

- a prefix without a host must lie in the deployment's own path namespace
  (``/acme/deployments/llama/...``), which forward-auth already attributes to
  it: there a binding only makes every request a call. A prefix such as
  ``/acme/models/secret/`` would turn reads of a team-restricted model into
  calls of the binder's deployment;
- a host needs an org admin besides: the server block that answers for it may
  route to any of the org's deployments (``/v1/chat/`` on ``llm.acme.example``
  bound to one deployment would win over the host bound alone to another), and
  org admins may already call every deployment of the org. It must be one of the
  org's verified email domains or a name under one (``llm.acme.example`` under
  ``acme.example``): hosts are a global namespace, and a verified domain is the
  proof an org already gives that a name is its own. A server block that serves
  by path sends no host (deploy/nginx/hubgate.conf), so no host binding decides
  for it;
- the operator vouches for both, as it does for domains.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import DeploymentRoute, Org, OrgDomain, Resource
from hubgate.errors import BadRequest, Conflict, Forbidden, NotFound
from hubgate.gate.routes import check_host, check_prefix
from hubgate.orgs.resources import target_of
from hubgate.principals import require

__all__ = ["MAX_ROUTES", "bind", "routes_of", "unbind"]

MAX_ROUTES = 16
"""Routes per deployment: a few hosts and prefixes, not a routing table of its own."""


def routes_of(db: Session, principal: Principal, deployment: Resource) -> list[DeploymentRoute]:
    """The deployment's routes, oldest first, for whoever may read it."""
    require(principal, Action.READ, target_of(deployment))
    return list(
        db.scalars(
            select(DeploymentRoute)
            .where(DeploymentRoute.resource_id == deployment.id)
            .order_by(DeploymentRoute.id)
        )
    )


def bind(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    deployment: Resource,
    host: str | None,
    path_prefix: str | None,
) -> DeploymentRoute:
    """Route ``host`` and/or ``path_prefix`` to ``deployment``."""
    require(principal, Action.DEPLOY, target_of(deployment))
    host = check_host(host) if host is not None else None
    path_prefix = check_prefix(path_prefix) if path_prefix is not None else None
    if host is None and path_prefix is None:
        raise BadRequest("Give a host, a path prefix or both.", code="route_empty")
    if not principal.is_operator:
        _check_owned(db, principal, org, deployment, host, path_prefix)
    _check_room(db, deployment)
    return _insert(db, actor, org, deployment, host, path_prefix)


def _check_owned(
    db: Session,
    principal: Principal,
    org: Org,
    deployment: Resource,
    host: str | None,
    path_prefix: str | None,
) -> None:
    """What a member may bind (the module docstring says why)."""
    if host is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
        if not _under_verified_domain(db, org, host):
            raise Forbidden(
                "The host must be a verified domain of this organization or a name under one.",
                code="host_not_verified",
            )
        return
    own = f"/{org.name}/deployments/{deployment.name}/"
    if path_prefix is not None and not path_prefix.startswith(own):
        raise Forbidden(
            f"A path prefix without a host must start with {own}.",
            code="prefix_outside_deployment",
        )


def _under_verified_domain(db: Session, org: Org, host: str) -> bool:
    domains = db.scalars(
        select(OrgDomain.domain).where(
            OrgDomain.org_id == org.id, OrgDomain.verified_at.is_not(None)
        )
    )
    return any(host == d or host.endswith(f".{d}") for d in domains)


def _check_room(db: Session, deployment: Resource) -> None:
    count = db.scalar(select(func.count()).where(DeploymentRoute.resource_id == deployment.id))
    if (count or 0) >= MAX_ROUTES:
        raise Conflict(f"A deployment has at most {MAX_ROUTES} routes.", code="too_many_routes")


def _insert(
    db: Session,
    actor: Actor,
    org: Org,
    deployment: Resource,
    host: str | None,
    path_prefix: str | None,
) -> DeploymentRoute:
    route = DeploymentRoute(resource_id=deployment.id, host=host, path_prefix=path_prefix)
    db.add(route)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict(
            "That host and path prefix already lead to a deployment.", code="route_taken"
        ) from exc
    audit.record(
        db, actor, "deployment.route_bound", org_id=org.id,
        target=f"deployment/{deployment.name}",
        data={"route_id": route.id, "host": host, "path_prefix": path_prefix},
    )  # fmt: skip
    return route


def unbind(
    db: Session, actor: Actor, principal: Principal, org: Org, deployment: Resource, route_id: int
) -> None:
    """Remove one route of ``deployment``."""
    require(principal, Action.DEPLOY, target_of(deployment))
    route = db.get(DeploymentRoute, route_id)
    if route is None or route.resource_id != deployment.id:
        raise NotFound("No such route on this deployment.")
    db.delete(route)
    audit.record(
        db, actor, "deployment.route_unbound", org_id=org.id,
        target=f"deployment/{deployment.name}",
        data={"route_id": route.id, "host": route.host, "path_prefix": route.path_prefix},
    )  # fmt: skip
