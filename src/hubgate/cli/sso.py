"""``hubgate sso ...``: the operator's SSO connection commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.db.models import Org, SsoConnection
from hubgate.operator import operator, operator_principal
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import (
    connection_admin,
    connection_certificates,
    connection_summary,
    connections,
    metadata_refresh,
)
from hubgate.sso.oidc.config import TokenAuth

__all__ = ["sso"]


@click.group()
def sso() -> None:
    """Organization single sign-on."""


@sso.group("connection")
def connection() -> None:
    """SSO connections (one per identity provider)."""


def _describe(rt: Runtime, row: SsoConnection) -> dict[str, object]:
    return connection_summary.describe(rt, row)


@connection.command("add")
@click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")
@click.option("--saml-metadata", metavar="FILE_OR_URL", help="SAML: the IdP's metadata.")
@click.option("--allow-idp-initiated", is_flag=True, help="SAML: accept IdP-initiated sign-in.")
@click.option("--oidc-issuer", metavar="URL", help="OIDC: the issuer (discovery is fetched).")
@click.option("--client-id", help="OIDC: the client id.")
@click.option("--client-secret-stdin", is_flag=True, help="OIDC: read the client secret.")
@click.option(
    "--token-auth", type=click.Choice([t.value for t in TokenAuth]),
    default=TokenAuth.CLIENT_SECRET_BASIC.value, show_default=True, help="OIDC: client auth.",
)  # fmt: skip
@json_option
def connection_add(
    org_name: str,
    saml_metadata: str | None,
    allow_idp_initiated: bool,
    oidc_issuer: str | None,
    client_id: str | None,
    client_secret_stdin: bool,
    token_auth: str,
) -> None:
    """Create a SAML connection from IdP metadata, or an OIDC one from an issuer;
    prints its id and the values to give the IdP."""
    if (saml_metadata is None) == (oidc_issuer is None):
        raise click.UsageError("Give exactly one of --saml-metadata and --oidc-issuer.")
    rt = runtime()
    stdin = click.get_text_stream("stdin")
    secret = stdin.readline().rstrip("\r\n") if client_secret_stdin else ""
    with rt.db.transaction() as db:
        service.get_org(db, org_name)  # an unknown org is refused before any fetch
    # fetched before the transaction that stores, never inside it
    metadata = connections.load_metadata(rt, saml_metadata) if saml_metadata else b""
    provider = connections.discover(rt, oidc_issuer) if oidc_issuer is not None else None
    with rt.db.transaction() as db:
        org: Org = service.get_org(db, org_name)
        principal = operator_principal()
        if oidc_issuer is not None and provider is not None:
            row = connections.create_oidc(
                db, rt, operator(), principal, org, issuer=oidc_issuer,
                client_id=client_id or "", client_secret=secret, provider=provider,
                token_auth=TokenAuth(token_auth),
            )  # fmt: skip
        else:
            row = connections.create_saml(
                db, rt, operator(), principal, org, metadata,
                allow_idp_initiated=allow_idp_initiated, metadata_url=_url(saml_metadata),
            )  # fmt: skip
        data = _describe(rt, row)
    emit(data, lambda: "\n".join(f"{k}: {v}" for k, v in data.items()))


def _url(source: str | None) -> str | None:
    """The metadata's URL when it came from one (a file is not read again)."""
    return source if source and source.startswith(("http://", "https://")) else None


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
        connection_certificates.add_certificate(db, operator(), operator_principal(), row, pem)
        data = _describe(rt, row)
    emit(data, f"connection {connection_id}: IdP certificate added")


def _idp_of(described: dict[str, Any]) -> str:
    """Who the connection trusts: a SAML IdP's entity id, an OpenID Provider's issuer."""
    return str(described.get("idp_entity_id") or described.get("issuer") or "")


@connection.command("list")
@click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")
@json_option
def connection_list(org_name: str) -> None:
    """The org's SSO connections with their state, IdP and when the IdP's
    certificate expires (``--json``: every certificate, hubgate's own too)."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [_describe(rt, r) for r in connections.of_org(db, service.get_org(db, org_name))]
    emit(rows, lambda: table(
        [[str(r[k]) for k in ("id", "kind", "state", "name")] + [_idp_of(r), _expiry_of(r)]
         for r in rows],
        ["id", "kind", "state", "name", "idp", "idp certificate expires"],
    ))  # fmt: skip


def _expiry_of(described: dict[str, Any]) -> str:
    """When the IdP certificate that lasts longest expires: "2027-01-05 (in 30 days)"."""
    idp = [c for c in described.get("certificates", []) if c["use"] == "idp_signing"]
    if not idp:
        return "-"
    last = max(idp, key=lambda c: c["not_after"])
    return f"{last['not_after']:%Y-%m-%d} ({last['expiry']})"


_CONNECTION_ID = click.IntRange(1, 2**31 - 1)


@connection.command("rename")
@click.argument("connection_id", type=_CONNECTION_ID)
@click.argument("name")
@json_option
def connection_rename(connection_id: int, name: str) -> None:
    """Give a connection the display name people choose it by when the org has
    several active connections (1 to 120 printable characters, unique in the org)."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = connections.get(db, connection_id)
        connection_admin.rename(db, operator(), operator_principal(), row, name)
        data = _describe(rt, row)
    emit(data, f"connection {connection_id}: named {data['name']}")


@connection.command("refresh")
@click.argument("connection_id", type=_CONNECTION_ID)
@json_option
def connection_refresh(connection_id: int) -> None:
    """Read a SAML connection's metadata URL again now: new signing certificates
    are added, removed ones retire after their replacement signs a sign-in, and a
    new entity ID or SSO URL waits for an admin's approval."""
    rt = runtime()
    done = metadata_refresh.refresh(rt, operator(), connection_id)
    data = {"id": connection_id, **dataclasses.asdict(done)}
    emit(data, f"connection {connection_id}: metadata {done.result}"
         + (f" ({done.reason})" if done.reason else ""))  # fmt: skip
    if done.result == "failed":
        raise SystemExit(1)


@connection.command("delete")
@click.argument("connection_id", type=_CONNECTION_ID)
@json_option
def connection_delete(connection_id: int) -> None:
    """Delete a connection that is not active (deactivate an active one first); the
    SSO links of the people who signed in through it go with it."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = connections.get(db, connection_id)
        links = connection_admin.delete(db, operator(), operator_principal(), row)
    data = {"id": connection_id, "links_removed": links}
    emit(data, f"connection {connection_id}: deleted ({links} SSO links removed)")
