"""End-to-end fixtures: real processes on 127.0.0.1, always stopped afterwards.

- :func:`running_server`: hubgate itself under uvicorn, on a database the caller
  migrated (the ``database_url`` fixture, so SQLite or PostgreSQL);
- :func:`echo_upstream`: a stand-in model server that answers every request with
  what it received, as JSON, and remembers it;
- :func:`running_nginx`: Debian's nginx running ``deploy/nginx/hubgate.conf``;
- :func:`running_caddy`: Debian's Caddy running ``deploy/caddy/Caddyfile``.

They are plain context managers so other suites and benchmarks can use them
outside pytest; the fixtures below wrap them. Without an nginx or a caddy binary
their fixtures skip; CI installs ``nginx-light`` and ``caddy``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from hubgate.accounts import tokens
from hubgate.audit import Actor
from hubgate.db.models import User
from hubgate.runtime import Runtime
from tests.ports import free_port

__all__ = [
    "HUBGATE_SITE",
    "VLLM_SITE",
    "EchoUpstream",
    "Site",
    "UpstreamRequest",
    "bearer",
    "caddy_binary",
    "echo_upstream",
    "nginx_binary",
    "personal_token",
    "read_request",
    "refusal",
    "render_caddyfile",
    "render_nginx_conf",
    "running_caddy",
    "running_nginx",
    "running_server",
    "serving",
]

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "hubgate.conf"
CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"
HUBGATE_PLACEHOLDER = "hubgate:8000"
UPSTREAM_PLACEHOLDER = "model-server:9000"
LISTEN_PLACEHOLDER = "listen 80;"
SITE_PLACEHOLDER = "models.example.com {"
STARTUP_SECONDS = 60.0  # a ceiling, not a wait: a busy machine starts servers slowly
STOP_SECONDS = 10.0


# -- processes -----------------------------------------------------------------


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    """Poll ``ready`` until it holds; fail with the process output if it dies or hangs."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {STARTUP_SECONDS:.0f}s:\n{_tail(log)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL to the whole process group (nginx workers too)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(STOP_SECONDS)


@contextmanager
def _process(
    command: list[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own session (so Ctrl-C reaches pytest, which stops it)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        _stop(process)
        if process.returncode not in (0, -signal.SIGTERM):
            print(f"--- {command[0]} exited with {process.returncode}:\n{_tail(log)}")


# -- hubgate -------------------------------------------------------------------


def _hubgate_env(database_url: str, base_url: str, extra: Mapping[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    return inherited | {
        "HUBGATE_ENV": "dev",
        "HUBGATE_DATABASE_URL": database_url,
        "HUBGATE_BASE_URL": base_url,
        "HUBGATE_PASSWORD_MEMORY_KIB": "1024",
        "HUBGATE_PASSWORD_TIME_COST": "1",
        **extra,
    }


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_server(database_url: str, extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """hubgate under uvicorn on a free loopback port; yields its base URL.

    ``database_url`` must already be migrated. ``extra_env`` adds or overrides
    ``HUBGATE_*`` settings (inherited ``HUBGATE_*`` variables are dropped, and
    the working folder is a fresh one, so no stray ``.env`` applies).
    """
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "hubgate.app:create_app",
        "--host", HOST, "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hubgate-e2e-") as folder:
        env = _hubgate_env(database_url, base_url, extra_env or {})
        log = Path(folder) / "hubgate.log"
        with _process(command, log, env=env, cwd=folder) as process:
            _wait_until(lambda: _healthy(base_url), process, "hubgate", log)
            yield base_url


# -- the model server ------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamRequest:
    """One request as the model server received it (header names lowercased)."""

    method: str
    path: str
    headers: dict[str, list[str]]
    body_bytes: int


@dataclass
class EchoUpstream:
    """A stand-in model server on ``address`` (``host:port``) and what reached it."""

    address: str
    requests: list[UpstreamRequest] = field(default_factory=list)


def read_request(handler: BaseHTTPRequestHandler) -> tuple[UpstreamRequest, bytes]:
    """The request ``handler`` is answering, as recorded, and its body."""
    length = int(handler.headers.get("content-length") or 0)
    body = handler.rfile.read(length) if length else b""
    headers: dict[str, list[str]] = {}
    for name, value in handler.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return UpstreamRequest(handler.command, handler.path, headers, len(body)), body


def _echo_handler(seen: list[UpstreamRequest]) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # nginx keeps upstream connections alive

        def _echo(self) -> None:
            request, _body = read_request(self)
            seen.append(request)
            payload = json.dumps(asdict(request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _echo

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the test reads ``requests`` instead."""

    return Echo


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], name: str) -> Iterator[str]:
    """``handler`` served by a thread on a free loopback port; yields ``host:port``."""
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    try:
        yield f"{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_SECONDS)


@contextmanager
def echo_upstream() -> Iterator[EchoUpstream]:
    """An HTTP server in a thread that echoes method, path and headers as JSON."""
    upstream = EchoUpstream(address="")
    with serving(_echo_handler(upstream.requests), "echo-upstream") as address:
        upstream.address = address
        yield upstream


# -- nginx -----------------------------------------------------------------------


def nginx_binary() -> str | None:
    """nginx on PATH, else Debian's /usr/sbin/nginx (not on a normal user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


@dataclass(frozen=True)
class Site:
    """A site config of ``deploy/nginx/`` and the address of its model server in it."""

    path: Path
    upstream_placeholder: str


HUBGATE_SITE = Site(NGINX_CONF, UPSTREAM_PLACEHOLDER)
VLLM_SITE = Site(REPO / "deploy" / "nginx" / "vllm.conf", "vllm:8001")


def _substitute(text: str, placeholder: str, value: str, source: Path = NGINX_CONF) -> str:
    if placeholder not in text:
        raise AssertionError(f"{source} no longer contains {placeholder!r}")
    return text.replace(placeholder, value)


def render_nginx_conf(
    prefix: Path, *, listen_port: int, hubgate: str, upstream: str, site_conf: Site = HUBGATE_SITE
) -> str:
    """A site of ``deploy/nginx/`` (hubgate.conf unless told) with test addresses,
    wrapped in a whole nginx.conf whose pid, logs and temporary files all live
    under ``prefix``."""
    site = site_conf.path.read_text()
    site = _substitute(site, HUBGATE_PLACEHOLDER, hubgate)
    site = _substitute(site, site_conf.upstream_placeholder, upstream)
    site = _substitute(site, LISTEN_PLACEHOLDER, f"listen {HOST}:{listen_port};")
    # As root, workers would switch to `nobody`, who cannot enter pytest's folders.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
{user}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log stderr info;

events {{
    worker_connections 256;
}}

http {{
    access_log {prefix / "logs" / "access.log"};
{temp}
    default_type application/octet-stream;

{site}
}}
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_nginx(
    binary: str, *, hubgate_url: str, upstream: str, site: Site = HUBGATE_SITE
) -> Iterator[str]:
    """nginx in the foreground with the rendered config; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hubgate-nginx-") as folder:
        prefix = Path(folder)
        for sub in ("logs", "temp"):
            (prefix / sub).mkdir()
        conf = prefix / "nginx.conf"
        hubgate = hubgate_url.removeprefix("http://")
        conf.write_text(
            render_nginx_conf(
                prefix, listen_port=port, hubgate=hubgate, upstream=upstream, site_conf=site
            )
        )
        command = [binary, "-p", f"{prefix}/", "-c", str(conf)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused the config:\n{checked.stderr}")
        log = prefix / "logs" / "nginx.log"  # error_log is stderr, which goes here
        with _process(command, log) as process:
            _wait_until(lambda: _listening(port), process, "nginx", log)
            try:
                yield f"http://{HOST}:{port}"
            finally:
                print(f"--- nginx log (tail):\n{_tail(log, 20)}")


# -- Caddy -----------------------------------------------------------------------


def caddy_binary() -> str | None:
    """caddy on PATH (Debian's package installs /usr/bin/caddy)."""
    return shutil.which("caddy")


def render_caddyfile(*, listen_port: int, hubgate: str, upstream: str) -> str:
    """``deploy/caddy/Caddyfile`` with test addresses: plain HTTP on loopback, no
    admin endpoint (it would take port 2019) and no certificate management."""
    site = CADDYFILE.read_text()
    site = _substitute(site, HUBGATE_PLACEHOLDER, hubgate, CADDYFILE)
    site = _substitute(site, UPSTREAM_PLACEHOLDER, upstream, CADDYFILE)
    site = _substitute(site, SITE_PLACEHOLDER, f"http://{HOST}:{listen_port} {{", CADDYFILE)
    return f"{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}"


def _caddy_env(home: Path) -> dict[str, str]:
    """Caddy keeps its state (certificates, autosaved config) under these; a
    temporary home keeps the test away from the user's."""
    folders = {name: str(home) for name in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    return dict(os.environ) | folders


@contextmanager
def running_caddy(binary: str, *, hubgate_url: str, upstream: str) -> Iterator[str]:
    """Caddy in the foreground with the rendered Caddyfile; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hubgate-caddy-") as folder:
        home = Path(folder)
        config = home / "Caddyfile"
        hubgate = hubgate_url.removeprefix("http://")
        config.write_text(render_caddyfile(listen_port=port, hubgate=hubgate, upstream=upstream))
        env = _caddy_env(home)
        arguments = ["--config", str(config), "--adapter", "caddyfile"]
        checked = subprocess.run(
            [binary, "validate", *arguments], capture_output=True, text=True, env=env,
            check=False,
        )  # fmt: skip
        if checked.returncode != 0:
            raise RuntimeError(f"caddy refused the Caddyfile:\n{checked.stderr}")
        log = home / "caddy.log"
        with _process([binary, "run", *arguments], log, env=env, cwd=folder) as process:
            _wait_until(lambda: _listening(port), process, "caddy", log)
            try:
                yield f"http://{HOST}:{port}"
            finally:
                print(f"--- caddy log (tail):\n{_tail(log, 20)}")


# -- callers -------------------------------------------------------------------


def personal_token(rt: Runtime, user: User, scope: str, *, revoked: bool = False) -> str:
    """A personal token of ``user`` with one scope, as its holder would keep it."""
    actor = Actor(label="e2e", user_id=user.id)
    with rt.db.transaction() as db:
        new = tokens.create_personal(db, actor, user.id, f"{scope}-token", [scope], None, rt.now())
        if revoked:
            tokens.revoke_personal(db, actor, user.id, new.row.id, rt.now())
    return new.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def refusal(response: httpx.Response) -> tuple[int, str | None]:
    """A proxy's refusal as hubgate worded it: the status and ``X-Hubgate-Reason``."""
    return response.status_code, response.headers.get("x-hubgate-reason")


# -- fixtures --------------------------------------------------------------------


@pytest.fixture
def nginx() -> str:
    """The nginx binary, or skip the test."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (CI installs Debian's nginx-light)")
    return binary


@pytest.fixture
def hubgate_url(database_url: str) -> Iterator[str]:
    """A running hubgate on the test's (migrated, empty) database."""
    with running_server(database_url) as base_url:
        yield base_url


@pytest.fixture
def model_server() -> Iterator[EchoUpstream]:
    with echo_upstream() as upstream:
        yield upstream


@pytest.fixture
def nginx_url(nginx: str, hubgate_url: str, model_server: EchoUpstream) -> Iterator[str]:
    """nginx running deploy/nginx/hubgate.conf in front of ``model_server``."""
    with running_nginx(nginx, hubgate_url=hubgate_url, upstream=model_server.address) as url:
        yield url


@pytest.fixture
def caddy() -> str:
    """The caddy binary, or skip the test."""
    binary = caddy_binary()
    if binary is None:
        pytest.skip("caddy is not installed (CI installs Debian's caddy)")
    return binary


@pytest.fixture
def caddy_url(caddy: str, hubgate_url: str, model_server: EchoUpstream) -> Iterator[str]:
    """Caddy running deploy/caddy/Caddyfile in front of ``model_server``."""
    with running_caddy(caddy, hubgate_url=hubgate_url, upstream=model_server.address) as url:
        yield url
