"""``hubgate demo``: a throw-away hubgate and the development IdP, with two orgs
(DESIGN.md §4)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click
import uvicorn

from hubgate import demo as demo_data
from hubgate.cli.base import load, port_option
from hubgate.cli.devidp import loopback_host
from hubgate.db.migrate import upgrade
from hubgate.runtime import Runtime, build_runtime

__all__ = ["demo"]


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, callback=loopback_host,
    help="Loopback bind address for hubgate and the dev IdP.",
)  # fmt: skip
@port_option
@click.option(
    "--idp-port", type=click.IntRange(1, 65535), default=8001, show_default=True,
    help="Port of the development IdP (SAML and OIDC).",
)  # fmt: skip
@click.option(
    "--db", "path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hubgate-demo.db"), show_default=True,
    help="SQLite file for the demo; deleted and created afresh at every start.",
)  # fmt: skip
def demo(host: str, port: int, idp_port: int, path: Path) -> None:
    """Run a throw-away demo: hubgate and the development IdP, two orgs (acme
    managed through SAML, globex basic through OIDC) on a fresh SQLite database.

    Development settings (HUBGATE_ENV=dev, HUBGATE_ALLOW_PRIVATE_IDP_URLS) apply
    whatever the environment says, so no secret is needed. Loopback only.
    It writes a .env in the current folder (development mode, the demo's
    database and URL) so the tour's CLI commands work there, and removes it when
    it stops; a .env it did not write is left alone and the demo refuses to start.
    Ctrl+C (or SIGTERM, SIGHUP) stops both.
    """
    from hubgate.app import create_app  # the web stack loads only for the commands that serve

    if idp_port == port:
        raise click.UsageError("--port and --idp-port must differ.")
    folder = Path.cwd()
    try:
        demo_data.check_env_file(folder)
    except demo_data.ForeignEnvFile as exc:
        raise click.UsageError(str(exc)) from exc
    base_url = f"http://{_url_host(host)}:{port}"
    rt = _demo_runtime(path, base_url)
    try:
        _write_env(folder, rt)
        idp = demo_data.DemoIdp(f"http://{_url_host(host)}:{idp_port}")
        info = demo_data.seed(rt, idp)
        config = uvicorn.Config(
            create_app(runtime=rt), host=host, port=port, proxy_headers=False, log_level="info"
        )
        with (
            demo_data.leaving_on_signals() as leaving,
            demo_data.dev_idp_running(rt, info, idp_port),
        ):
            click.echo(demo_data.describe(info, base_url, _command_name()))
            leaving.serve(uvicorn.Server(config))
    finally:
        demo_data.remove_env_file(folder)
        rt.db.engine.dispose()


def _write_env(folder: Path, rt: Runtime) -> None:
    try:
        demo_data.write_env_file(folder, rt.settings)
    except (demo_data.ForeignEnvFile, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc


def _command_name() -> str:
    """How to run this hubgate again from the current folder: ``hubgate`` when the
    PATH finds this very script, else its path (``.venv/bin/hubgate`` under make)."""
    started = Path(sys.argv[0])
    if started.name != "hubgate" or not started.is_file():
        return "hubgate"
    found = shutil.which("hubgate")
    if found is not None and Path(found).resolve() == started.resolve():
        return "hubgate"
    return shlex.quote(str(started))


def _demo_runtime(path: Path, base_url: str) -> Runtime:
    """Development settings on a fresh, migrated SQLite file, whatever the environment says."""
    settings = load(
        env="dev", database_url=f"sqlite:///{_fresh_file(path)}", base_url=base_url,
        allow_private_idp_urls=True,
    )  # fmt: skip
    upgrade(settings.database_url)
    return build_runtime(settings)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _fresh_file(path: Path) -> Path:
    """Delete the old demo database (with its WAL files) and answer the absolute path."""
    resolved = path.expanduser().resolve()
    for suffix in ("", "-wal", "-shm"):
        resolved.with_name(resolved.name + suffix).unlink(missing_ok=True)
    resolved.parent.mkdir(parents=True, exist_ok=True)
    return resolved
