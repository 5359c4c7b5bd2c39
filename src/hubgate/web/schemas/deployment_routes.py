"""Request and response documents of a deployment's routes in the JSON API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from hubgate.gate.routes import MAX_HOST, MAX_PREFIX
from hubgate.web.schemas import IsoInstant, Strict

__all__ = ["DeploymentRouteCreate", "DeploymentRoutePublic"]


class DeploymentRouteCreate(Strict):
    """A host, a path prefix or both; the service checks their form and ownership."""

    host: Annotated[str | None, Field(min_length=1, max_length=MAX_HOST + 1)] = None
    path_prefix: Annotated[str | None, Field(min_length=1, max_length=MAX_PREFIX)] = None


class DeploymentRoutePublic(BaseModel):
    id: int
    org: str
    deployment: str
    host: str | None
    path_prefix: str | None
    created_at: IsoInstant
