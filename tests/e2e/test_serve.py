"""``hubgate serve`` from the outside: the request-head bound (a request with too
many header bytes gets 431 and a closed connection, never the app) and uvicorn's
worker health-check timeout, on a real server with two workers."""

from __future__ import annotations

import select
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, _healthy, _hubgate_env, _process, _wait_until
from tests.ports import free_port

pytestmark = [pytest.mark.e2e]
HUBGATE = str(Path(sys.executable).with_name("hubgate"))


@contextmanager
def serving(database_url: str, *options: str) -> Iterator[int]:
    """``hubgate serve`` with ``options`` on a free port; yields the port."""
    port = free_port()
    command = [HUBGATE, "serve", "--host", HOST, "--port", str(port), *options]
    with tempfile.TemporaryDirectory(prefix="hubgate-serve-") as folder:
        env = _hubgate_env(database_url, f"http://{HOST}:{port}", {})
        log = Path(folder) / "hubgate.log"
        with _process(command, log, env=env, cwd=folder) as process:
            _wait_until(lambda: _healthy(f"http://{HOST}:{port}"), process, "hubgate", log)
            yield port


def ask(port: int, headers: list[tuple[str, str]]) -> bytes:
    """``GET /healthz`` with ``headers`` over a raw socket, sent in pieces until the
    server answers (it may answer and close before the head is complete); the
    status line of the answer, or b"" if the connection closed without one."""
    head = "GET /healthz HTTP/1.1\r\nHost: hubgate\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    data = head.encode()
    with socket.create_connection((HOST, port), timeout=10) as connection:
        for start in range(0, len(data), 16 * 1024):
            if select.select([connection], [], [], 0)[0]:
                break  # answered already
            try:
                connection.sendall(data[start : start + 16 * 1024])
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        try:
            while b"\r\n" not in answer and (chunk := connection.recv(4096)):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer.split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    from hubgate.db.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'hubgate.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[int]:
    with serving(database, "--workers", "2", "--timeout-worker-healthcheck", "30") as port:
        yield port


OK = b"HTTP/1.1 200 OK"
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large"


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Big", "a" * 1024 * 1024)],
        [(f"X-Many-{i}", "a" * 1000) for i in range(1000)],
        [("X-Just-Over", "a" * 64 * 1024)],
    ],
    ids=["one-1-MiB-header", "1000-headers-of-1-KB", "just-over-64-KiB"],
)
def test_a_request_with_too_many_header_bytes_is_refused(
    server: int, headers: list[tuple[str, str]]
) -> None:
    assert ask(server, headers) == TOO_LARGE
    assert ask(server, []) == OK, "the server still serves"


def test_a_request_head_within_the_bound_is_served(server: int) -> None:
    cookie = "; ".join(f"c{i}={'v' * 100}" for i in range(80))  # 8 KB of cookies
    assert ask(server, [("Cookie", cookie), ("X-Near", "a" * 50 * 1024)]) == OK


def test_the_bound_is_set_with_max_header_bytes(database: str) -> None:
    with serving(database, "--max-header-bytes", "4096") as port:
        assert ask(port, [("X-Five-KB", "a" * 5000)]) == TOO_LARGE
        assert ask(port, [("X-Three-KB", "a" * 3000)]) == OK
