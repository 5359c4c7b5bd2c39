"""Mail leaves through a real SMTP server (aiosmtpd on loopback): written in the
caller's transaction, claimed by one sender, delivered outside any transaction,
retried with backoff while the server is down and delivered when it is back.

Time is a :class:`Clock` the sender reads; nothing here sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import metrics
from hubgate.app import create_app
from hubgate.cli.root import main
from hubgate.db.models import OutboxMail
from hubgate.db.types import utcnow
from hubgate.mail import outbox
from hubgate.mail.sender import Sender, build_sender
from hubgate.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.integration.smtp_server import (
    HOST,
    PASSWORD,
    USER,
    Certificate,
    Inbox,
    self_signed,
    smtp_server,
)
from tests.ports import free_port

FROM = "hubgate <noreply@hubgate.test>"
TO = "ada@example.com"


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def server(inbox: Inbox, port: int) -> Iterator[None]:
    with smtp_server(inbox, port):
        yield


@pytest.fixture
def cert(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


class Runtimes(Protocol):
    def __call__(self, smtp_url: str | None) -> Runtime: ...


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtimes]:
    """Runtimes on the test's database with the given HUBGATE_SMTP_URL."""
    built: list[Runtime] = []

    def make(smtp_url: str | None) -> Runtime:
        built.append(build_runtime(make_settings(database_url, smtp_url=smtp_url, mail_from=FROM)))
        return built[-1]

    yield make
    for each in built:
        each.db.engine.dispose()


@pytest.fixture
def rt(runtime: Runtimes, port: int) -> Runtime:
    return runtime(f"smtp://{HOST}:{port}")


def sender_for(rt: Runtime, clock: Clock, **transport: Any) -> Sender:
    built = build_sender(rt)
    assert built is not None
    return replace(built, clock=clock, transport=replace(built.transport, **transport))


def later() -> Clock:
    """A clock just past the rows queued so far, so they are due."""
    return Clock(utcnow() + timedelta(seconds=1))


def queue(rt: Runtime, subject: str = "Hello", body: str = "Hi Ada", **kw: Any) -> int:
    with rt.db.transaction() as db:
        rt.mailer.send(db, TO, subject, body, **kw)
        db.flush()
        return int(db.scalars(select(OutboxMail.id).order_by(OutboxMail.id.desc())).first() or 0)


def row(rt: Runtime, mail_id: int) -> OutboxMail:
    with rt.db.transaction() as db:
        return db.get_one(OutboxMail, mail_id)


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


# -- delivery ----------------------------------------------------------------


@pytest.mark.usefixtures("server")
def test_mail_of_a_rolled_back_transaction_is_never_sent(rt: Runtime, inbox: Inbox) -> None:
    with pytest.raises(RuntimeError), rt.db.transaction() as db:
        rt.mailer.send(db, TO, "Confirm your email address", "a link")
        raise RuntimeError("the change that caused the mail fails")
    report = sender_for(rt, later()).send_due()
    assert (report.sent, inbox.messages) == (0, [])
    with rt.db.transaction() as db:
        assert db.scalars(select(OutboxMail)).all() == []


@pytest.mark.usefixtures("server")
def test_committed_mail_is_delivered_as_text_with_an_html_alternative(
    rt: Runtime, inbox: Inbox
) -> None:
    body = "Confirm <your> address:\n\nhttps://hubgate.test/verify/abc?x=1&y=2.\n\nThanks"
    mail_id = queue(rt, "Confirm your email address", body)
    clock = later()
    report = sender_for(rt, clock).send_due()
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    [message] = inbox.messages
    assert (message["From"], message["To"]) == (FROM, TO)
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"].endswith("@hubgate.test>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n").strip() == body
    assert '<a href="https://hubgate.test/verify/abc?x=1&amp;y=2">' in html.get_content()
    assert "Confirm &lt;your&gt; address:" in html.get_content()
    sent = row(rt, mail_id)
    assert (sent.status, sent.attempts, sent.sent_at, sent.claimed_by) == (
        "sent",
        1,
        clock.at,
        None,
    )


@pytest.mark.usefixtures("server")
def test_the_rows_own_html_is_the_alternative(rt: Runtime, inbox: Inbox) -> None:
    queue(rt, body="plain words", html="<p><strong>rich</strong> words</p>")
    sender_for(rt, later()).send_due()
    html = inbox.messages[0].get_body(("html",))
    assert html is not None
    assert html.get_content().strip() == "<p><strong>rich</strong> words</p>"


@pytest.mark.usefixtures("server")
def test_a_resend_carries_the_same_message_id(rt: Runtime, inbox: Inbox) -> None:
    """At least once: a sender that crashed after sending leaves its claim, which
    runs out; the next sender sends again, and the receiver can tell it is the same."""
    mail_id = queue(rt)
    clock = later()
    crashed = sender_for(rt, clock)
    with rt.db.transaction() as db:
        [claimed] = outbox.claim(db, crashed.instance, clock())
    with crashed.transport.connect() as connection:  # sent, and then the process died
        connection.send_message(_compose(claimed, clock))
    clock.advance(outbox.LEASE)
    assert sender_for(rt, clock).send_due().sent == 1
    first, second = inbox.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert row(rt, mail_id).status == "sent"


def _compose(mail: Any, clock: Clock) -> Any:
    from hubgate.mail.message import compose

    return compose(mail, FROM, clock())


@pytest.mark.usefixtures("server")
def test_a_background_pass_sends_at_most_its_batches(rt: Runtime, inbox: Inbox) -> None:
    for _ in range(outbox.BATCH + 2):
        queue(rt)
    sender = sender_for(rt, later())
    assert sender.send_due(max_batches=1).sent == outbox.BATCH
    assert sender.send_due().sent == 2
    assert len(inbox.messages) == outbox.BATCH + 2


@pytest.mark.usefixtures("server")
def test_a_refused_recipient_is_retried_and_the_next_mail_still_goes(
    rt: Runtime, inbox: Inbox
) -> None:
    inbox.refused.add("gone@example.com")
    with rt.db.transaction() as db:
        rt.mailer.send(db, "gone@example.com", "Hello", "Hi")
    delivered = queue(rt, subject="Next in the batch")
    report = sender_for(rt, later()).send_due()
    assert (report.sent, report.retried) == (1, 1)
    assert [m["Subject"] for m in inbox.messages] == ["Next in the batch"]
    with rt.db.transaction() as db:
        refused = db.scalars(select(OutboxMail).where(OutboxMail.id != delivered)).one()
    assert (refused.status, refused.attempts) == ("pending", 1)
    assert "No such mailbox" in (refused.last_error or "")


@pytest.mark.usefixtures("server")
def test_a_header_that_cannot_be_sent_fails_at_once(rt: Runtime, inbox: Inbox) -> None:
    mail_id = queue(rt, subject="Hello\nBcc: eve@example.com")
    report = sender_for(rt, later()).send_due()
    assert (report.sent, report.failed, inbox.messages) == (0, 1, [])
    assert (row(rt, mail_id).status, row(rt, mail_id).attempts) == ("failed", 1)


# -- TLS and credentials -----------------------------------------------------


def test_starttls_is_used_when_offered_and_then_the_login(
    runtime: Runtimes, inbox: Inbox, port: int, cert: Certificate
) -> None:
    rt = runtime(f"smtp://{USER}:{PASSWORD}@{HOST}:{port}")
    options = {"tls_context": cert.server_context(), "require_starttls": True}
    auth = {"authenticator": inbox.authenticate, "auth_required": True}
    with smtp_server(inbox, port, **options, **auth):
        queue(rt)
        report = sender_for(rt, later(), tls=cert.client_context()).send_due()
    assert (report.sent, inbox.logins, len(inbox.messages)) == (1, [USER], 1)


def test_smtps_is_tls_from_the_first_byte(
    runtime: Runtimes, inbox: Inbox, port: int, cert: Certificate
) -> None:
    rt = runtime(f"smtps://{USER}:{PASSWORD}@{HOST}:{port}")
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS throughout.
    auth = {"authenticator": inbox.authenticate, "auth_require_tls": False}
    with smtp_server(inbox, port, ssl_context=cert.server_context(), **auth):
        queue(rt)
        report = sender_for(rt, later(), tls=cert.client_context()).send_due()
    assert (report.sent, inbox.logins, len(inbox.messages)) == (1, [USER], 1)


def test_an_untrusted_certificate_is_refused(
    rt: Runtime, inbox: Inbox, port: int, cert: Certificate
) -> None:
    """STARTTLS to a server whose certificate the system does not trust: not sent."""
    with smtp_server(inbox, port, tls_context=cert.server_context(), require_starttls=True):
        mail_id = queue(rt)
        report = sender_for(rt, later()).send_due()
    assert (report.sent, report.retried, inbox.messages) == (0, 1, [])
    assert "CERTIFICATE_VERIFY_FAILED" in (row(rt, mail_id).last_error or "")


@pytest.mark.usefixtures("server")
def test_credentials_are_never_sent_without_tls(
    runtime: Runtimes, inbox: Inbox, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtime(f"smtp://{USER}:{PASSWORD}@{HOST}:{port}")
    mail_id = queue(rt)
    report = sender_for(rt, later()).send_due()
    failed = row(rt, mail_id)
    assert (report.sent, report.retried, inbox.messages) == (0, 1, [])
    assert "STARTTLS" in (failed.last_error or "")
    assert PASSWORD not in (failed.last_error or "") and PASSWORD not in caplog.text


# -- the server is down ------------------------------------------------------


def test_mail_waits_while_the_server_is_down_and_goes_out_when_it_is_back(
    rt: Runtime, inbox: Inbox, port: int
) -> None:
    mail_id = queue(rt)
    clock = later()
    sender = sender_for(rt, clock)
    retries = counter("hubgate_mail_failed_attempts_total", outcome="retry")

    assert sender.send_due().retried == 1  # nobody listens on the port
    waiting = row(rt, mail_id)
    assert (waiting.status, waiting.attempts, waiting.claimed_by) == ("pending", 1, None)
    assert "ConnectionRefusedError" in (waiting.last_error or "")
    assert waiting.next_attempt_at == clock.at + outbox.retry_delay(1) > clock.at
    assert counter("hubgate_mail_failed_attempts_total", outcome="retry") == retries + 1
    assert counter("hubgate_mail_outbox_rows", status="pending") >= 1

    with smtp_server(inbox, port):
        assert sender.send_due().sent == 0  # back, but the row is not due yet
        clock.advance(outbox.retry_delay(1))
        assert sender.send_due().sent == 1
    delivered = row(rt, mail_id)
    assert (delivered.status, delivered.attempts, len(inbox.messages)) == ("sent", 2, 1)


def test_after_the_last_attempt_the_mail_is_failed_and_listed(
    rt: Runtime, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail_id = queue(rt, subject="Reset your password")
    clock = later()
    sender = sender_for(rt, clock)
    finals = counter("hubgate_mail_failed_attempts_total", outcome="final")
    reports = []
    for _ in range(outbox.MAX_ATTEMPTS):
        reports.append(sender.send_due())
        clock.advance(timedelta(hours=1))
    assert [r.retried for r in reports] == [1] * (outbox.MAX_ATTEMPTS - 1) + [0]
    assert reports[-1].failed == 1
    given_up = row(rt, mail_id)
    assert (given_up.status, given_up.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert counter("hubgate_mail_failed_attempts_total", outcome="final") == finals + 1
    assert sender.send_due().failed == 0  # never tried again

    queue(rt, subject="Still pending")
    monkeypatch.chdir(tmp_path)
    listed = _json(hubgate(database_url, "mail", "outbox", "--failed", "--json"))
    assert [(m["id"], m["status"], m["attempts"]) for m in listed] == [
        (mail_id, "failed", outbox.MAX_ATTEMPTS)
    ]
    assert "ConnectionRefusedError" in listed[0]["last_error"]
    text = hubgate(database_url, "mail", "outbox", "--failed").stdout
    assert "[failed after 12 attempt(s): ConnectionRefusedError" in text
    assert "Still pending" not in text


# -- claims ------------------------------------------------------------------


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(rt: Runtime) -> None:
    ids = {queue(rt) for _ in range(3)}
    clock = later()
    with rt.db.transaction() as db:
        first = outbox.claim(db, "one", clock())
    with rt.db.transaction() as db:
        second = outbox.claim(db, "two", clock())
    clock.advance(outbox.LEASE)
    with rt.db.transaction() as db:
        after_lease = outbox.claim(db, "two", clock())
    assert ({m.id for m in first}, second, {m.id for m in after_lease}) == (ids, [], ids)


def test_concurrent_senders_never_claim_the_same_row(rt: Runtime) -> None:
    """Four senders claim small batches at once until nothing is left: each row is
    claimed exactly once, by the sender the row names."""
    ids = {queue(rt) for _ in range(24)}
    now = later()()
    start = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}

    def claim_all(instance: str) -> None:
        got: list[int] = []
        start.wait()
        while True:
            with rt.db.transaction() as db:
                batch = outbox.claim(db, instance, now, limit=2)
            if not batch:
                break
            got += [m.id for m in batch]
        claimed[instance] = got

    threads = [threading.Thread(target=claim_all, args=(f"sender-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [mail_id for got in claimed.values() for mail_id in got]
    assert sorted(every) == sorted(ids)  # all claimed, none twice
    with rt.db.transaction() as db:
        holders = {i: by for i, by in db.execute(select(OutboxMail.id, OutboxMail.claimed_by))}
    assert all(holders[m] == instance for instance, got in claimed.items() for m in got)


def test_postgresql_skips_rows_another_sender_is_claiming(rt: Runtime) -> None:
    """While one claim's transaction is open, another skips its rows (SKIP LOCKED)
    instead of waiting or taking them."""
    if rt.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: a second claim waits for the first")
    ids = {queue(rt) for _ in range(4)}
    now = later()()
    with rt.db.transaction() as first_db:
        first = outbox.claim(first_db, "one", now, limit=2)
        with rt.db.transaction() as second_db:
            second = outbox.claim(second_db, "two", now)
    assert {m.id for m in first} | {m.id for m in second} == ids
    assert not {m.id for m in first} & {m.id for m in second}


# -- the CLI and the app -----------------------------------------------------


def hubgate(database_url: str, *args: str, smtp_url: str | None = None) -> Result:
    """``hubgate ARGS`` in dev mode on the test's database; no HUBGATE_* leaks in."""
    env = {
        "HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url, "HUBGATE_SMTP_URL": smtp_url,
        "HUBGATE_MAIL_FROM": FROM, "HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None,
    }  # fmt: skip
    return CliRunner(env=env).invoke(main, list(args))


def _json(result: Result) -> Any:
    import json

    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


@pytest.mark.usefixtures("server")
def test_hubgate_mail_send_delivers_what_is_due(
    rt: Runtime, inbox: Inbox, port: int, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    queue(rt)
    queue(rt, subject="Second")
    monkeypatch.chdir(tmp_path)
    url = f"smtp://{HOST}:{port}"
    assert _json(hubgate(database_url, "mail", "send", "--json", smtp_url=url)) == {
        "sent": 2, "retried": 0, "failed": 0,
    }  # fmt: skip
    assert sorted(m["Subject"] for m in inbox.messages) == ["Hello", "Second"]
    assert hubgate(database_url, "mail", "send", smtp_url=url).stdout.strip() == (
        "sent 0, to retry 0, failed 0"
    )


def test_hubgate_mail_send_without_a_server_leaves_the_outbox(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = hubgate(database_url, "mail", "send")
    assert result.exit_code == 1
    assert "error: smtp_not_configured: HUBGATE_SMTP_URL is not set" in result.stderr


@pytest.mark.usefixtures("server")
def test_each_instance_sends_in_the_background_and_stops_with_the_app(
    rt: Runtime, inbox: Inbox
) -> None:
    queue(rt, subject="From the worker")
    app = create_app(runtime=rt)
    with TestClient(app):
        assert inbox.received.wait(timeout=30), "the worker sent nothing"
        worker = app.state.worker
        assert worker.running
    assert not worker.running
    assert [m["Subject"] for m in inbox.messages] == ["From the worker"]


def test_without_a_server_no_mail_job_runs_and_mail_stays(runtime: Runtimes) -> None:
    rt = runtime(None)
    app = create_app(runtime=rt)
    with TestClient(app):
        assert [job.name for job in app.state.worker.jobs] == [
            "purge-unverified",
            "certificates",
            "metadata-refresh",
            "audit-streams-setup",
            "audit-streams",
        ]
        mail_id = queue(rt)
    assert row(rt, mail_id).status == "pending"
