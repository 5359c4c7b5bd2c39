"""``hubgate provider ...``: platform sign-in providers for people's own accounts."""

from __future__ import annotations

import click

from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.operator import operator
from hubgate.sso import connections, github
from hubgate.sso.platform import providers

__all__ = ["provider"]


@click.group()
def provider() -> None:
    """Sign-in providers for own accounts ("Continue with NAME" on /login and /signup)."""


@provider.command("add")
@click.option("--oidc-issuer", metavar="URL", help="An OpenID Provider's issuer.")
@click.option("--github", "use_github", is_flag=True, help="GitHub (OAuth app).")
@click.option(
    "--base-url", metavar="URL", help="GitHub Enterprise Server's URL (default github.com)."
)
@click.option("--client-id", required=True, help="The client id registered there.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@click.option("--name", help='Shown as "Continue with NAME" (GitHub: "GitHub").')
@json_option
def provider_add(
    oidc_issuer: str | None,
    use_github: bool,
    base_url: str | None,
    client_id: str,
    client_secret_stdin: bool,
    name: str | None,
) -> None:
    """Add an OpenID Provider by issuer (its discovery document is fetched) or
    GitHub; prints its id and the redirect URI (callback URL) to register there."""
    if (oidc_issuer is None) == (not use_github):
        raise click.UsageError("Give exactly one of --oidc-issuer and --github.")
    if base_url is not None and not use_github:
        raise click.UsageError("--base-url is for --github.")
    if oidc_issuer is not None and not name:
        raise click.UsageError("An OpenID Provider needs --name.")
    if not client_secret_stdin:
        raise click.UsageError("Give the client secret on stdin with --client-secret-stdin.")
    rt = runtime()
    secret = click.get_text_stream("stdin").readline().rstrip("\r\n")
    shown = providers.checked_name(name or "GitHub")  # a bad name is refused before any fetch
    discovered = connections.discover(rt, oidc_issuer) if oidc_issuer else None  # never in a tx
    with rt.db.transaction() as db:
        if discovered is not None:
            row = providers.add_oidc(
                db, rt, operator(), name=shown, client_id=client_id, client_secret=secret,
                provider=discovered,
            )  # fmt: skip
        else:
            row = providers.add_github(
                db, rt, operator(), name=shown, client_id=client_id, client_secret=secret,
                base_url=base_url or github.GITHUB_COM,
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
