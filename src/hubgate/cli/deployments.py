"""``hubgate deployment routes|bind|unbind``: the hosts and path prefixes a
deployment is reached at behind the gate (see hubgate.gate.routes).

The operator vouches for what it binds: unlike an org member, it may bind any
host and any prefix (hubgate.gate.bindings says why members may not).
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from hubgate.access import ResourceKind
from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.db.models import DeploymentRoute, Org, Resource
from hubgate.gate import bindings
from hubgate.operator import operator, operator_principal
from hubgate.orgs import resources, service

__all__ = ["deployment"]

org_option = click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")


@click.group()
def deployment() -> None:
    """Deployments behind the gate: bind one to a host and/or a path prefix so an
    OpenAI-compatible server (vLLM, TGI, SGLang) is gated at its own /v1/ paths."""


def _json(org: Org, found: Resource, row: DeploymentRoute) -> dict[str, Any]:
    return {
        "id": row.id, "org": org.name, "deployment": found.name, "host": row.host,
        "path_prefix": row.path_prefix, "created_at": row.created_at,
    }  # fmt: skip


def _deployment(db: Session, org_name: str, name: str) -> tuple[Org, Resource]:
    found = service.get_org(db, org_name)
    return found, resources.get(db, found, ResourceKind.DEPLOYMENT, name)


def _line(data: dict[str, Any]) -> list[str]:
    return [str(data["id"]), data["host"] or "(any host)", data["path_prefix"] or "(any path)"]


@deployment.command("routes")
@org_option
@click.argument("name")
@json_option
def deployment_routes(org_name: str, name: str) -> None:
    """List the routes of deployment NAME."""
    with runtime().db.transaction() as db:
        found, target = _deployment(db, org_name, name)
        rows = bindings.routes_of(db, operator_principal(), target)
        data = [_json(found, target, row) for row in rows]
    emit(data, lambda: table([_line(d) for d in data], ["ID", "HOST", "PATH PREFIX"]))


@deployment.command("bind")
@org_option
@click.argument("name")
@click.option("--host", metavar="HOST", help="A DNS name, such as llm.acme.example (no port).")
@click.option(
    "--prefix", "path_prefix", metavar="PREFIX",
    help="A path prefix that starts and ends with '/', such as /acme/deployments/llama/.",
)  # fmt: skip
@json_option
def deployment_bind(org_name: str, name: str, host: str | None, path_prefix: str | None) -> None:
    """Route HOST and/or PREFIX to deployment NAME: every request there is a call of it."""
    with runtime().db.transaction() as db:
        found, target = _deployment(db, org_name, name)
        row = bindings.bind(db, operator(), operator_principal(), found, target, host, path_prefix)
        data = _json(found, target, row)
    _, where, under = _line(data)
    emit(data, f"bound {where}, {under} to {found.name}/{name} (id {row.id})")


@deployment.command("unbind")
@org_option
@click.argument("name")
@click.argument("route_id", metavar="ID", type=click.IntRange(1, 2**31 - 1))
@json_option
def deployment_unbind(org_name: str, name: str, route_id: int) -> None:
    """Remove route ID of deployment NAME."""
    with runtime().db.transaction() as db:
        found, target = _deployment(db, org_name, name)
        bindings.unbind(db, operator(), operator_principal(), found, target, route_id)
    emit({"id": route_id, "removed": True}, f"removed route {route_id} of {org_name}/{name}")
