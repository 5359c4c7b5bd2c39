"""The deployment routes as the hot path reads them: every binding in one query.

The table is small (a handful of rows per deployment that serves an API), so it
is read whole into an immutable :class:`~hubgate.gate.routes.RouteTable` that a
process may keep and swap when a change sequence moves.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.access import ResourceKind
from hubgate.db.models import DeploymentRoute, Org, Resource
from hubgate.gate.routes import Binding, RouteTable
from hubgate.runtime import Runtime

__all__ = ["current", "load"]

_ALL_BINDINGS = (
    select(Org.name, Resource.name, DeploymentRoute.host, DeploymentRoute.path_prefix)
    .join(Resource, Resource.id == DeploymentRoute.resource_id)
    .join(Org, Org.id == Resource.org_id)
    .where(Resource.kind == ResourceKind.DEPLOYMENT.value)
)


def load(db: Session) -> RouteTable:
    """Every binding of every deployment."""
    return RouteTable(Binding(*row) for row in db.execute(_ALL_BINDINGS))


def current(rt: Runtime) -> RouteTable:
    """The table as of now, in a transaction of its own; the gate keeps it while
    the change sequence stands still (bindings changes move it)."""
    with rt.db.transaction() as db:
        return load(db)
