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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import uvicorn

from hubgate import __version__
from hubgate.cli.base import HubgateGroup, host_option, load, port_option
from hubgate.metrics import MULTIPROC_DIR
from hubgate.web.server import MAX_HEAD_BYTES, BoundedHttpTools

__all__ = ["main"]


# Imported when a command line names them (HubgateGroup).
_GROUPS = {
    "user": "hubgate.cli.manage:user",
    "org": "hubgate.cli.manage:org",
    "member": "hubgate.cli.manage:member",
    "team": "hubgate.cli.manage:team",
    "resource": "hubgate.cli.manage:resource",
    "deployment": "hubgate.cli.deployments:deployment",
    "token": "hubgate.cli.records:token",
    "audit": "hubgate.cli.records:audit_command",
    "audit-stream": "hubgate.cli.streams:audit_stream",
    "mail": "hubgate.cli.records:mail",
    "sso": "hubgate.cli.sso_policy:sso",  # the sso group, with its policy commands
    "domain": "hubgate.cli.domains:domain",
    "scim": "hubgate.cli.scim:scim",
    "provider": "hubgate.cli.providers:provider",
    "keys": "hubgate.cli.keys:keys",
    "dev-idp": "hubgate.cli.devidp:dev_idp",
    "demo": "hubgate.cli.demo:demo",
    "db": "hubgate.cli.db:db",
}


@click.group(
    "hubgate", cls=HubgateGroup, lazy=_GROUPS,
    context_settings={"help_option_names": ["-h", "--help"]},
)  # fmt: skip
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
