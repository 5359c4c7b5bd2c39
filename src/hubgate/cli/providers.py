"""``hubgate provider ...``: platform sign-in providers for people's own accounts."""

from __future__ import annotations

import click

from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.operator import operator
from hubgate.sso import connections
from hubgate.sso.platform import providers

__all__ = ["provider"]


@click.group()
def provider() -> None:
    """Sign-in providers for own accounts ("Continue with NAME" on /login and /signup)."""


@provider.command("add")
@click.option("--oidc-issuer", required=True, metavar="URL", help="The OpenID Provider's issuer.")
@click.option("--client-id", required=True, help="The client id registered there.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@click.option("--name", required=True, help='Shown as "Continue with NAME".')
@json_option
def provider_add(oidc_issuer: str, client_id: str, client_secret_stdin: bool, name: str) -> None:
    """Add an OpenID Provider by issuer (its discovery document is fetched); prints
    its id and the redirect URI to register with it."""
    if not client_secret_stdin:
        raise click.UsageError("Give the client secret on stdin with --client-secret-stdin.")
    rt = runtime()
    secret = click.get_text_stream("stdin").readline().rstrip("\r\n")
    providers.checked_name(name)  # a bad name is refused before any fetch
    discovered = connections.discover(rt, oidc_issuer)  # before the transaction, never in it
    with rt.db.transaction() as db:
        row = providers.add_oidc(
            db, rt, operator(), name=name, client_id=client_id, client_secret=secret,
            provider=discovered,
        )  # fmt: skip
        data = {**providers.describe(row), "redirect_uri": providers.redirect_uri(rt, row.id)}
    emit(data, lambda: "\n".join(f"{k}: {v}" for k, v in data.items()))


@provider.command("list")
@json_option
def provider_list() -> None:
    """The providers, in the order the sign-in page shows them."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [providers.describe(row) for row in providers.listed(db)]
    headers = ["id", "name", "issuer", "client_id"]
    emit(rows, lambda: table([[str(r[h]) for h in headers] for r in rows], headers))


@provider.command("remove")
@click.argument("provider_id", type=click.IntRange(1, 2**31 - 1))
@json_option
def provider_remove(provider_id: int) -> None:
    """Remove a provider and the links it made (the accounts stay)."""
    rt = runtime()
    with rt.db.transaction() as db:
        providers.remove(db, operator(), provider_id)
    emit({"removed": provider_id}, f"provider {provider_id} removed")
