"""``/api/v1/orgs/{org}/resources/deployments/{name}/routes``: the hosts and path
prefixes a deployment is reached at behind the gate (see hubgate.gate.routes).

The route docstrings are the API documentation (OpenAPI descriptions)."""

from __future__ import annotations

from fastapi import Request, Response

from hubgate.access import ResourceKind
from hubgate.db.models import DeploymentRoute, Org, Resource
from hubgate.gate import bindings
from hubgate.orgs import resources
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId
from hubgate.web.schemas.deployment_routes import DeploymentRouteCreate, DeploymentRoutePublic

__all__ = ["router"]

router = api_router("/orgs/{org}/resources/deployments/{name}/routes", ["deployments"])


def route_public(org: Org, deployment: Resource, row: DeploymentRoute) -> DeploymentRoutePublic:
    return DeploymentRoutePublic(
        id=row.id, org=org.name, deployment=deployment.name, host=row.host,
        path_prefix=row.path_prefix, created_at=row.created_at,
    )  # fmt: skip


@router.get("", response_model=list[DeploymentRoutePublic])
def list_routes(
    org: str, name: str, rt: Rt, credential: CurrentCredential
) -> list[DeploymentRoutePublic]:
    """The hosts and path prefixes that lead to the deployment, oldest first;
    for whoever may read it."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        deployment = resources.get(db, found, ResourceKind.DEPLOYMENT, name)
        rows = bindings.routes_of(db, principal, deployment)
        return [route_public(found, deployment, row) for row in rows]


@router.post("", status_code=201, response_model=DeploymentRoutePublic)
def bind_route(
    org: str,
    name: str,
    body: DeploymentRouteCreate,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> DeploymentRoutePublic:
    """Bind a host and/or a path prefix to the deployment; needs ``deploy`` on it.

    Forward-auth (``GET /auth/check``) then maps every request on that host (read
    from the header ``HUBGATE_HOST_HEADER`` names) and/or under that prefix to a
    ``call`` of the deployment, so an OpenAI-compatible server is gated at its own
    ``/v1/...`` paths. The longest prefix wins, host-specific bindings before
    host-less ones.

    - ``host``: a DNS name without port (``llm.acme.example``), stored lowercased;
      binding one needs an org admin too, and it must be a verified domain of
      the org or a name under one (``403 host_not_verified``);
    - ``path_prefix``: starts and ends with ``/``, plain segments only (no ``.``
      or ``..``, no %-encoding, no backslash); without a host it must start with
      ``/{org}/deployments/{name}/`` (``403 prefix_outside_deployment``).

    ``400 invalid_host``, ``invalid_path_prefix`` or ``route_empty`` for a bad
    value, ``409 route_taken`` when the pair already leads to a deployment,
    ``409 too_many_routes`` past 16 per deployment. Audited
    ``deployment.route_bound``."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        deployment = resources.get(db, found, ResourceKind.DEPLOYMENT, name)
        row = bindings.bind(
            db, actor_of(request, rt, credential), principal, found, deployment,
            body.host, body.path_prefix,
        )  # fmt: skip
        return route_public(found, deployment, row)


@router.delete("/{route_id}", status_code=204)
def unbind_route(
    org: str, name: str, route_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """Remove one route; needs ``deploy``. Audited ``deployment.route_unbound``."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        deployment = resources.get(db, found, ResourceKind.DEPLOYMENT, name)
        actor = actor_of(request, rt, credential)
        bindings.unbind(db, actor, principal, found, deployment, route_id)
    return Response(status_code=204)
