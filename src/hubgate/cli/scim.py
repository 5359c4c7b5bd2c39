"""``hubgate scim token create|list|revoke``: an org's SCIM bearer tokens, for operators."""

from __future__ import annotations

import click

from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.operator import operator, operator_principal
from hubgate.orgs import service
from hubgate.provisioning import tokens

__all__ = ["scim"]

org_option = click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")


@click.group()
def scim() -> None:
    """SCIM 2.0 provisioning (/scim/v2/{org}/...)."""


@scim.group("token")
def token() -> None:
    """Bearer tokens the org's IdP provisions with."""


@token.command("create")
@org_option
@click.option("--name", default="SCIM", show_default=True, help="A label for the token.")
@json_option
def token_create(org_name: str, name: str) -> None:
    """A new token for the org; the secret is printed this once."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        row, secret = tokens.create(db, operator(), operator_principal(), org, name)
        data = {**tokens.describe(row), "token": secret, "base_url": rt.url(f"/scim/v2/{org.name}")}
    emit(data, lambda: f"{secret}\nSCIM base URL: {data['base_url']}")


@token.command("list")
@org_option
@json_option
def token_list(org_name: str) -> None:
    """The org's live SCIM tokens (never their secrets)."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [tokens.describe(r) for r in tokens.list_for(db, service.get_org(db, org_name))]
    emit(rows, lambda: table(
        [[str(r["id"]), str(r["name"]), f"…{r['hint']}", str(r["last_used_at"])] for r in rows],
        ["id", "name", "ends", "last used"],
    ))  # fmt: skip


@token.command("revoke")
@org_option
@click.argument("token_id", type=int)
@json_option
def token_revoke(org_name: str, token_id: int) -> None:
    """Revoke a SCIM token now."""
    rt = runtime()
    with rt.db.transaction() as db:
        tokens.revoke(
            db, operator(), operator_principal(), service.get_org(db, org_name), token_id, rt.now()
        )
    emit({"revoked": token_id}, f"SCIM token {token_id} revoked")
