"""``hubgate dev-idp``: the development identity provider (SAML 2.0 and OpenID
Connect in one process) for trying hubgate on this machine. NOT FOR PRODUCTION;
it listens on loopback only."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import click
import uvicorn

from hubgate.devidp.app import DevIdp, create_app
from hubgate.devidp.keys import load_or_create
from hubgate.devidp.users import DEFAULT_USERS, DirectoryInvalid, load

__all__ = ["dev_idp", "is_loopback_host", "loopback_host", "url_host"]

WARNING = "hubgate dev-idp: a development identity provider with test users, NOT FOR PRODUCTION"
log = logging.getLogger("hubgate.devidp")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def loopback_host(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not is_loopback_host(value):
        raise click.BadParameter(
            f"{value!r} is not a loopback address; the dev IdP listens on 127.0.0.1, ::1 "
            "or localhost only."
        )
    return value


@click.command("dev-idp")
@click.option(
    "--host", default="127.0.0.1", show_default=True, callback=loopback_host,
    help="Loopback bind address (127.0.0.1, ::1 or localhost); any other is refused.",
)  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option(
    "--users", "users_file", type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_USERS, show_default="the shipped users.toml",
    help="Users, groups, SAML SPs and OIDC clients (TOML, or JSON by suffix).",
)  # fmt: skip
@click.option(
    "--keys", "key_dir", type=click.Path(file_okay=False, path_type=Path),
    default=Path(".hubgate-dev-idp"), show_default=True,
    help="Folder keeping the signing key and certificate (made on first use).",
)  # fmt: skip
def dev_idp(host: str, port: int, users_file: Path, key_dir: Path) -> None:
    """Run a development SAML 2.0 IdP and OpenID provider, for trying hubgate only.

    NOT FOR PRODUCTION: test users with plain-text passwords from the users file.
    SAML metadata at /saml/metadata, the OIDC issuer at /oidc. Stop it with Ctrl+C.
    """
    try:
        directory = load(users_file)
    except DirectoryInvalid as exc:
        raise click.UsageError(f"--users: {exc}") from exc
    base_url = f"http://{url_host(host)}:{port}"
    site = DevIdp(base_url, directory, load_or_create(key_dir))
    logging.basicConfig(level=logging.INFO)
    log.warning("%s, on %s (SAML metadata %s/saml/metadata, OIDC issuer %s/oidc)",
                WARNING, base_url, base_url, base_url)  # fmt: skip
    uvicorn.run(create_app(site), host=host, port=port, log_level="info", proxy_headers=False)
