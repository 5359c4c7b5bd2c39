"""``hubgate sso ...``: the operator's SSO connection commands."""

from __future__ import annotations

from pathlib import Path

import click

from hubgate.cli_base import emit, json_option, runtime, table
from hubgate.cli_operator import operator, operator_principal
from hubgate.db.models import Org, SsoConnection
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import connections

__all__ = ["sso"]


@click.group()
def sso() -> None:
    """Organization single sign-on."""


@sso.group("connection")
def connection() -> None:
    """SSO connections (one per identity provider)."""


def _describe(rt: Runtime, row: SsoConnection) -> dict[str, object]:
    return connections.describe(rt, row)


@connection.command("add")
@click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")
@click.option("--saml-metadata", required=True, metavar="FILE_OR_URL", help="IdP metadata.")
@click.option("--allow-idp-initiated", is_flag=True, help="Accept IdP-initiated sign-in.")
@json_option
def connection_add(org_name: str, saml_metadata: str, allow_idp_initiated: bool) -> None:
    """Create a SAML connection from the IdP's metadata; prints its id and SP values."""
    rt = runtime()
    metadata = connections.load_metadata(rt, saml_metadata)
    with rt.db.transaction() as db:
        org: Org = service.get_org(db, org_name)
        row = connections.create_saml(
            db, rt, operator(), operator_principal(org), org, metadata,
            allow_idp_initiated=allow_idp_initiated,
        )  # fmt: skip
        data = _describe(rt, row)
    emit(
        data,
        lambda: f"{data['id']}\nSP entity id: {data['sp_entity_id']}\nACS URL: {data['acs_url']}",
    )


@connection.command("add-cert")
@click.argument("connection_id", type=int)
@click.option("--cert", "cert_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def connection_add_cert(connection_id: int, cert_file: Path) -> None:
    """Add an IdP signing certificate (PEM) for rotation: any listed one verifies."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = connections.get(db, connection_id)
        org = db.get(Org, row.org_id)
        assert org is not None
        pem = cert_file.read_text()[:65536]
        connections.add_certificate(db, operator(), operator_principal(org), row, pem)
        data = _describe(rt, row)
    emit(data, f"connection {connection_id}: IdP certificate added")


@connection.command("list")
@click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")
@json_option
def connection_list(org_name: str) -> None:
    """The org's SSO connections with their state and SP values."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [_describe(rt, r) for r in connections.of_org(db, service.get_org(db, org_name))]
    emit(rows, lambda: table(
        [[str(r["id"]), str(r["kind"]), str(r["state"]), str(r["idp_entity_id"])] for r in rows],
        ["id", "kind", "state", "idp"],
    ))  # fmt: skip
