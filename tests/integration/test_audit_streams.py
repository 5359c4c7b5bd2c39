"""Audit streaming end to end: a webhook receiver of the test's own that is down
and comes back gets every event of its org (de-duplicated by id, each signature
verified); a failing stream never holds back a sign-in and shows as failing; the
JSON API refuses what it must; rsyslog receives RFC 5424 messages.

Time is a :class:`Clock` the streamer reads; the one wait is for rsyslog to write
its file, polled with a generous ceiling.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import audit
from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.config import Settings
from hubgate.db.models import AuditDelivery, AuditEvent, Org
from hubgate.db.types import utcnow
from hubgate.runtime import Runtime, build_runtime
from hubgate.streams import manage, queue
from hubgate.streams.deliver import Streamer
from hubgate.streams.formats import SIGNATURE_HEADER, verify_signature
from tests.conftest import World, make_settings, sign_in
from tests.integration.smtp_server import Certificate, self_signed
from tests.integration.sso_world import person, sso_org
from tests.ports import free_port

RSYSLOGD = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, allow_private_idp_urls=True)


@dataclass
class Clock:
    at: datetime = field(default_factory=lambda: utcnow() + timedelta(seconds=1))

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta = queue.LONGEST_RETRY) -> None:
        self.at += by


@dataclass
class Receiver:
    """What a receiver does: check the signature, keep each event by its id, and
    (``lose_answers`` times) take an event but answer 500, as if the answer was lost."""

    secret: str
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    forged: int = 0
    lose_answers: int = 0

    def take(self, body: bytes, signature: str) -> int:
        self.posts += 1
        if not verify_signature(self.secret, signature, body):
            self.forged += 1
            return 401
        event = json.loads(body)
        self.events[event["id"]] = event
        if self.lose_answers:
            self.lose_answers -= 1
            return 500
        return 204


@dataclass
class Running:
    server: ThreadingHTTPServer
    thread: threading.Thread


def serve(receiver: Receiver, port: int) -> Running:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(min(int(self.headers["Content-Length"]), 65536))
            self.send_response(receiver.take(body, self.headers.get(SIGNATURE_HEADER, "")))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Running(server, thread)


@pytest.fixture
def receivers() -> Iterator[Callable[[Receiver, int], Running]]:
    started: list[Running] = []

    def start(receiver: Receiver, port: int) -> Running:
        started.append(serve(receiver, port))
        return started[-1]

    yield start
    for running in started:
        running.server.shutdown()
        running.server.server_close()


def add_stream(rt: Runtime, org: Org, kind: str, url: str) -> tuple[int, str | None]:
    with rt.db.transaction() as db:
        status, secret = manage.create_stream(
            db, rt, Actor.system(), Principal.operator(), db.merge(org), kind, url
        )
        return status.id, secret


def statuses(rt: Runtime, org: Org) -> list[manage.StreamStatus]:
    with rt.db.transaction() as db:
        return manage.list_streams(db, Principal.operator(), db.merge(org))


def record(rt: Runtime, org_id: int | None, *targets: str) -> None:
    with rt.db.transaction() as db:
        for target in targets:
            audit.record(db, Actor("ada@acme.test"), "test.event", org_id=org_id, target=target)


def streamed_ids(rt: Runtime, org_id: int) -> set[int]:
    """The org's events from the stream's creation on (itself audited, and streamed)."""
    with rt.db.transaction() as db:
        added = select(AuditEvent.id).where(AuditEvent.action == "audit.stream_added")
        since = db.scalars(added.where(AuditEvent.org_id == org_id)).one()
        ids = select(AuditEvent.id).where(AuditEvent.org_id == org_id, AuditEvent.id >= since)
        return set(db.scalars(ids))


def test_a_receiver_down_then_back_gets_every_event_once_by_id(
    rt: Runtime, world: World, receivers: Callable[[Receiver, int], Running]
) -> None:
    org = world.org("acme", world.user("admin@acme.test"))
    other = world.org("globex", world.user("admin@globex.test"))
    port = free_port()
    _, secret = add_stream(rt, org, "webhook", f"http://127.0.0.1:{port}/hook")
    record(rt, org.id, "one", "two", "three")
    record(rt, other.id, "elsewhere")
    clock = Clock()
    streamer = Streamer(rt, "test", clock)

    assert streamer.run() == 0
    (down,) = statuses(rt, org)
    assert down.failing and down.failing_since == clock.at and down.queued == 4
    assert down.last_error and "refused" in down.last_error.lower()

    assert secret is not None
    receiver = Receiver(secret, lose_answers=1)
    receivers(receiver, port)
    record(rt, org.id, "four")
    for _ in range(10):
        clock.advance()
        streamer.run()
        if not statuses(rt, org)[0].queued:
            break

    assert set(receiver.events) == streamed_ids(rt, org.id)
    assert receiver.posts == len(receiver.events) + 1  # the answer lost: sent again
    assert receiver.forged == 0
    (healthy,) = statuses(rt, org)
    assert not healthy.failing and healthy.last_error is None and healthy.queued == 0
    assert [e["target"] for e in receiver.events.values()][-4:] == ["one", "two", "three", "four"]


def test_the_operator_webhook_from_settings_gets_every_org(
    database_url: str, world: World, receivers: Callable[[Receiver, int], Running]
) -> None:
    port, secret = free_port(), "k" * 40
    rt = build_runtime(
        make_settings(
            database_url, allow_private_idp_urls=True,
            audit_webhook_url=f"http://127.0.0.1:{port}/", audit_webhook_secret=secret,
        )
    )  # fmt: skip
    receiver = Receiver(secret)
    receivers(receiver, port)
    try:
        streamer = Streamer(rt, "test", Clock())
        streamer.maintain()  # the stream from the settings, from now on
        record(rt, None, "no org")
        record(rt, world.org("acme", world.user("admin@acme.test")).id, "acme")
        assert streamer.run() >= 3
        assert {e["target"] for e in receiver.events.values()} >= {"no org", "acme"}
        assert receiver.forged == 0
    finally:
        rt.db.engine.dispose()


def test_a_failing_stream_never_blocks_a_sign_in_and_shows_failing(
    rt: Runtime, world: World, client: TestClient
) -> None:
    acme = sso_org(rt, world)
    sign_in(client, "admin@acme.example")
    dead = f"http://127.0.0.1:{free_port()}/hook"
    created = client.post("/api/v1/orgs/acme/audit-streams", json={"kind": "webhook", "url": dead})
    assert created.status_code == 201, created.text
    assert created.json()["secret"]

    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    bob = TestClient(client.app)
    sign_in(bob, "bob@acme.example")
    signed_in = acme.sign_in(bob, **person("bob@acme.example"))
    assert signed_in["status"] == 200, signed_in
    Streamer(rt, "test", Clock()).run()

    (shown,) = client.get("/api/v1/orgs/acme/audit-streams").json()
    assert shown["failing"] and shown["failing_since"] and shown["last_error"]
    assert shown["queued"] >= 2 and "secret" not in shown
    page = client.get("/acme/audit")
    assert page.status_code == 200 and "failing since" in page.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "webhook", "url": "http://hooks.example.com/"}, "url_insecure"),
        ({"kind": "webhook", "url": "https://u:p@hooks.example.com/"}, "url_invalid"),
        ({"kind": "syslog", "url": "udp://logs.example.com:514"}, "url_invalid"),
    ],
)
def test_the_api_refuses_bad_destinations(
    world: World, client: TestClient, body: dict[str, str], code: str
) -> None:
    world.org("acme", world.user("admin@acme.test"))
    sign_in(client, "admin@acme.test")
    refused = client.post("/api/v1/orgs/acme/audit-streams", json=body)
    assert refused.status_code == 400 and refused.json()["error"] == code


def test_only_admins_manage_streams_and_removal_is_audited(
    rt: Runtime, world: World, client: TestClient
) -> None:
    org = world.org("acme", world.user("admin@acme.test"))
    world.member(org, world.user("w@acme.test"), OrgRole.WRITE)
    stream_id, _ = add_stream(rt, org, "syslog", "tls://logs.example.com:6514")
    sign_in(client, "w@acme.test")
    assert client.get("/api/v1/orgs/acme/audit-streams").status_code == 403
    assert client.delete(f"/api/v1/orgs/acme/audit-streams/{stream_id}").status_code == 403
    sign_in(client, "admin@acme.test")
    assert client.delete(f"/api/v1/orgs/acme/audit-streams/{stream_id}").status_code == 204
    assert client.delete(f"/api/v1/orgs/acme/audit-streams/{stream_id}").status_code == 404
    assert client.get("/api/v1/orgs/acme/audit-streams").json() == []
    actions = [e["action"] for e in client.get("/api/v1/orgs/acme/audit").json()["events"]]
    assert actions[:2] == ["audit.stream_removed", "audit.stream_added"]


def test_a_queue_past_its_bound_drops_its_oldest(rt: Runtime, world: World) -> None:
    org = world.org("acme", world.user("admin@acme.test"))
    add_stream(rt, org, "webhook", f"http://127.0.0.1:{free_port()}/")
    record(rt, org.id, *(f"e{i}" for i in range(5)))
    with rt.db.transaction() as db:
        assert queue.trim(db, 4) == 2
    (trimmed,) = statuses(rt, org)
    assert (trimmed.queued, trimmed.dropped) == (4, 2)


# -- syslog ------------------------------------------------------------------


RSYSLOG_CONF = """\
$WorkDirectory {work}
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="fields" type="string"
         string="%protocol-version%|%app-name%|%msgid%|%structured-data%|%msg%\\n")
action(type="omfile" file="{out}" template="fields")
"""


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """rsyslogd in the foreground, unprivileged, on a free loopback port, writing
    what it parsed of each message to a file."""
    if RSYSLOGD is None:
        pytest.skip("rsyslogd is not installed (scripts/install-system-deps.sh)")
    port, out = free_port(), tmp_path / "out.log"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=tmp_path, port=port, out=out))
    daemon = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        poll(lambda: _listening(port), "rsyslogd listening")
        yield port, out
    finally:
        daemon.terminate()
        daemon.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def poll(ready: Callable[[], bool], what: str, ceiling: float = 20.0) -> None:
    """Wait for a program of another process, checking every 20 ms up to ``ceiling``."""
    deadline = time.monotonic() + ceiling
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        threading.Event().wait(0.02)


def test_syslog_events_arrive_as_rfc5424_with_structured_data(
    database_url: str, world: World, rsyslog: tuple[int, Path]
) -> None:
    port, out = rsyslog
    rt = build_runtime(make_settings(database_url, audit_syslog_url=f"tcp://127.0.0.1:{port}"))
    try:
        streamer = Streamer(rt, "test", Clock())
        streamer.maintain()
        org = world.org("acme", world.user("admin@acme.test"))
        record(rt, org.id, 'quote " and ] bracket')
        assert streamer.run() >= 2
        poll(lambda: out.exists() and "quote" in out.read_text(), "rsyslog's file")
    finally:
        rt.db.engine.dispose()
    lines = out.read_text().splitlines()
    version, app, msgid, data, message = lines[-1].split("|", 4)
    assert (version, app, msgid) == ("1", "hubgate", "test.event")
    assert data.startswith("[hubgate@32473 id=") and 'org="acme"' in data
    assert 'actor="ada@acme.test"' in data and 'target="quote \\" and \\] bracket"' in data
    assert message == 'ada@acme.test test.event quote " and ] bracket'
    assert any("|org.created|" in line for line in lines)


def test_the_operator_streams_every_org_from_the_cli(
    database_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url, "HUBGATE_SECRET_KEY": None}
    runner = CliRunner(env=env)
    world.org("acme", world.user("admin@acme.test"))

    def run(*args: str) -> Any:
        result = runner.invoke(main, ["audit-stream", *args, "--json"])
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.stdout)

    added = run("add", "webhook", "https://siem.example.com/hubgate")
    assert added["secret"] and added["origin"] == "operator"
    run("add", "--org", "acme", "syslog", "tls://logs.example.com:6514")
    assert [s["url"] for s in run("list")] == ["https://siem.example.com/hubgate"]
    assert [s["kind"] for s in run("list", "--org", "acme")] == ["syslog"]
    refused = runner.invoke(main, ["audit-stream", "add", "webhook", "http://siem.example.com/"])
    assert refused.exit_code != 0 and "https://" in refused.output + refused.stderr
    assert runner.invoke(main, ["audit-stream", "remove", str(added["id"])]).exit_code == 0
    assert run("list") == []


@dataclass
class TlsSyslog:
    """A syslog-over-TLS listener (RFC 5425 framing is RFC 6587's octet counting):
    it takes connections, reads each to its end, and keeps the frames."""

    cert: Certificate
    port: int = field(default_factory=free_port)
    frames: list[bytes] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def serve(self, connections: int) -> threading.Thread:
        listener = socket.create_server(("127.0.0.1", self.port))
        thread = threading.Thread(target=self._accept, args=(listener, connections), daemon=True)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket, connections: int) -> None:
        with listener:
            for _ in range(connections):
                raw, _address = listener.accept()
                try:
                    with self.cert.server_context().wrap_socket(raw, server_side=True) as tls:
                        self.frames.extend(unframe(_read_all(tls)))
                except (ssl.SSLError, OSError) as exc:
                    self.refused.append(str(exc))


def _read_all(sock: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def unframe(data: bytes) -> list[bytes]:
    """RFC 6587 §3.4.1: ``MSG-LEN SP SYSLOG-MSG``, one after another."""
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length) :]
    return frames


def test_syslog_over_tls_trusts_the_configured_ca_only(
    database_url: str, world: World, tmp_path: Path
) -> None:
    server = TlsSyslog(self_signed(tmp_path))
    url = f"tls://127.0.0.1:{server.port}"
    untrusting = build_runtime(make_settings(database_url, audit_syslog_url=url))
    trusting = build_runtime(
        make_settings(
            database_url, audit_syslog_url=url, audit_syslog_ca_file=str(server.cert.cert)
        )
    )
    try:
        clock = Clock()
        Streamer(untrusting, "test", clock).maintain()
        record(trusting, None, "over tls")
        listening = server.serve(connections=2)
        assert Streamer(untrusting, "test", clock).run() == 0
        clock.advance()
        assert Streamer(trusting, "test", clock).run() == 1
        listening.join(10)
    finally:
        untrusting.db.engine.dispose()
        trusting.db.engine.dispose()
    assert len(server.refused) == 1
    (message,) = server.frames
    assert message.startswith(b"<109>1 ") and b'target="over tls"' in message


@pytest.mark.parametrize(
    ("kind", "url"),
    [("webhook", "https://127.0.0.1:{port}/hook"), ("syslog", "tcp://localhost:{port}")],
)
def test_an_org_stream_to_a_private_address_is_refused_at_delivery(
    database_url: str, world: World, kind: str, url: str
) -> None:
    """Without ``HUBGATE_ALLOW_PRIVATE_IDP_URLS`` an org's stream may name any host,
    but every delivery checks the addresses it resolves to, and connects to none."""
    rt = build_runtime(make_settings(database_url))
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        org = world.org("acme", world.user("admin@acme.test"))
        add_stream(rt, org, kind, url.format(port=listener.getsockname()[1]))
        assert Streamer(rt, "test", Clock()).run() == 0
        (refused,) = statuses(rt, org)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
        rt.db.engine.dispose()
    assert refused.failing and refused.last_error and "private or loopback" in refused.last_error


def test_the_operator_streams_follow_the_settings(database_url: str) -> None:
    """Set, changed, unset: one stream per setting, whichever instance syncs."""

    def synced(**audit: str) -> list[tuple[str, str]]:
        rt = build_runtime(make_settings(database_url, **audit))
        try:
            Streamer(rt, "test").maintain()
            with rt.db.transaction() as db:
                return [(s.kind, s.url) for s in manage.operator_streams(db)]
        finally:
            rt.db.engine.dispose()

    assert synced(audit_syslog_url="tcp://logs.example.com:514") == [
        ("syslog", "tcp://logs.example.com:514")
    ]
    assert synced(audit_syslog_url="tls://logs.example.com:6514") == [
        ("syslog", "tls://logs.example.com:6514")
    ]
    assert synced() == []


def test_each_event_is_queued_for_its_orgs_streams_and_the_operators(
    database_url: str, world: World
) -> None:
    """The database queues an event (migration 0019's trigger): for the streams of
    its org and the operator-wide ones, never another org's, and not at all if
    the event's transaction rolls back."""
    rt = build_runtime(
        make_settings(
            database_url, allow_private_idp_urls=True, audit_syslog_url="tcp://logs.example.com:514"
        )
    )
    try:
        Streamer(rt, "test").maintain()
        acme = world.org("acme", world.user("admin@acme.test"))
        globex = world.org("globex", world.user("admin@globex.test"))
        acme_stream, _ = add_stream(rt, acme, "webhook", f"http://127.0.0.1:{free_port()}/")
        globex_stream, _ = add_stream(rt, globex, "webhook", f"http://127.0.0.1:{free_port()}/")
        with rt.db.transaction() as db:
            (operator_stream,) = (s.id for s in manage.operator_streams(db))
        queued_before = _queued(rt)
        record(rt, acme.id, "for acme")
        record(rt, None, "for nobody's org")
        with pytest.raises(RuntimeError), rt.db.transaction() as db:
            audit.record(db, Actor("ada@acme.test"), "test.event", org_id=acme.id, target="undone")
            raise RuntimeError("roll back")
        added = _queued(rt) - queued_before
        assert sorted(added) == sorted(
            [(acme_stream, "for acme"), (operator_stream, "for acme"),
             (operator_stream, "for nobody's org")]
        )  # fmt: skip
        assert globex_stream not in {stream for stream, _ in added}
    finally:
        rt.db.engine.dispose()


def _queued(rt: Runtime) -> set[tuple[int, str]]:
    """(stream, event target) of every queued delivery."""
    with rt.db.transaction() as db:
        rows = db.execute(
            select(AuditDelivery.stream_id, AuditEvent.target).join(
                AuditEvent, AuditEvent.id == AuditDelivery.event_id
            )
        )
        return {(stream, target) for stream, target in rows}
