"""The ``hubgate`` command (DESIGN.md §4).

Settings come from ``HUBGATE_*`` environment variables (and a ``.env``); each
command does its work in one transaction through the services, as the operator
(audit label ``operator:cli``). ``--json`` makes any command that prints data
print JSON; errors print ``error: <code>: <message>`` and exit with code 1.

    hubgate serve | demo | db upgrade
    hubgate user create|reset-link|purge-unverified | org create|list
    hubgate member list|add|set-role|unpin|remove
    hubgate team create|add-member | resource create | token create|revoke
    hubgate deployment routes|bind|unbind
    hubgate audit | mail outbox|send | keys list|rotate
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import uvicorn

from hubgate import __version__
from hubgate import demo as demo_data
from hubgate.cli.base import HubgateGroup, load, safe_url
from hubgate.cli.deployments import deployment
from hubgate.cli.devidp import dev_idp, loopback_host
from hubgate.cli.domains import domain
from hubgate.cli.keys import keys
from hubgate.cli.manage import member, org, resource, team, user
from hubgate.cli.providers import provider
from hubgate.cli.records import audit_command, mail, token
from hubgate.cli.scim import scim
from hubgate.cli.sso_policy import sso  # the sso group, with its policy commands
from hubgate.cli.streams import audit_stream
from hubgate.db.migrate import upgrade
from hubgate.metrics import MULTIPROC_DIR
from hubgate.runtime import Runtime, build_runtime
from hubgate.web.server import MAX_HEAD_BYTES, BoundedHttpTools

__all__ = ["main"]

host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
port_option = click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port."
)


@click.group("hubgate", cls=HubgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hubgate")
def main() -> None:
    """hubgate: organization single sign-on and access control for ML model platforms.

    Configure with HUBGATE_* environment variables or a .env file
    (HUBGATE_DATABASE_URL, HUBGATE_SECRET_KEY, HUBGATE_BASE_URL, ...).
    """


@main.command()
@host_option
@port_option
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--timeout-worker-healthcheck", type=click.IntRange(min=1), default=30, show_default=True,
    help="Seconds a worker may take to answer the supervisor's health check before it is "
    "restarted (with --workers over 1; uvicorn's own default, 5, restarts busy workers).",
)  # fmt: skip
@click.option(
    "--max-header-bytes", type=click.IntRange(min=1024), default=MAX_HEAD_BYTES,
    show_default=True,
    help="Largest request line and headers accepted; a larger request gets 431 and the "
    "connection is closed.",
)  # fmt: skip
def serve(
    host: str, port: int, workers: int, timeout_worker_healthcheck: int, max_header_bytes: int
) -> None:
    """Serve hubgate over HTTP with uvicorn (put a TLS proxy in front)."""
    settings = load()  # refuse to start with a bad configuration, before uvicorn forks
    with _metrics_files(settings.metrics_dir, workers):
        uvicorn.run(
            "hubgate.app:create_app", factory=True, host=host, port=port, workers=workers,
            proxy_headers=False, log_level="info", http=BoundedHttpTools, loop="uvloop",
            h11_max_incomplete_event_size=max_header_bytes,
            timeout_worker_healthcheck=timeout_worker_healthcheck,
        )  # fmt: skip


@contextmanager
def _metrics_files(named: Path | None, workers: int) -> Iterator[None]:
    """With several workers, an empty directory in PROMETHEUS_MULTIPROC_DIR before
    uvicorn spawns them, so /metrics adds every worker up (hubgate.metrics): the
    operator's ``named`` one, emptied, else a private one removed at the end. The
    variable is put back as it was when the server stops.

    One worker serves in this very process, whose prometheus_client has already
    chosen in-memory values, so it gets no directory."""
    if workers == 1:
        yield
        return
    before = os.environ.get(MULTIPROC_DIR)
    try:
        if named is not None:
            _emptied(named)
            os.environ[MULTIPROC_DIR] = str(named)
            yield
            return
        with tempfile.TemporaryDirectory(prefix="hubgate-metrics-") as private:
            os.environ[MULTIPROC_DIR] = private
            yield
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        if before is not None:
            os.environ[MULTIPROC_DIR] = before


def _emptied(folder: Path) -> None:
    """``folder``, made private if new, without the metric files of an earlier run."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at HUBGATE_DATABASE_URL to the newest schema."""
    url = load().database_url
    upgrade(url)
    click.echo(f"database {safe_url(url)} is up to date")


@main.command()
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


for command in (
    user,
    org,
    member,
    team,
    resource,
    deployment,
    token,
    audit_command,
    audit_stream,
    mail,
    sso,
    domain,
    scim,
    provider,
    keys,
):
    main.add_command(command)
main.add_command(dev_idp)
