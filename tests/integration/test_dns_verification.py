"""Domain verification against a real DNS server: Debian's dnsmasq on loopback,
serving the TXT records given on its command line (CI installs ``dnsmasq-base``).

hubgate asks it through ``HUBGATE_DNS_RESOLVER``, over HTTP and from the CLI;
nothing about DNS is faked here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.resolver
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.cli.root import main
from hubgate.config import Settings
from hubgate.db.models import AuditEvent, OrgDomain
from hubgate.runtime import Runtime
from hubgate.sso import domains
from tests.conftest import World, make_settings, sign_in
from tests.ports import free_port

HOST = "127.0.0.1"
BASE = "/api/v1/orgs/acme/domains"
STARTUP_SECONDS = 10.0


def dnsmasq_binary() -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("dnsmasq", path=path)


def _answers(port: int) -> bool:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = [HOST], port, 0.5
    try:
        resolver.resolve("ready.test.", "TXT")
    except dns.resolver.NXDOMAIN:
        return True
    except dns.exception.DNSException:
        return False
    return True


@contextmanager
def dnsmasq(binary: str, port: int, records: list[str], log: Path) -> Iterator[None]:
    """dnsmasq in the foreground, authoritative-like for ``.test`` (unknown names
    there are NXDOMAIN, names elsewhere REFUSED), with ``records`` as --txt-record."""
    command = [
        binary, "--no-daemon", "--conf-file=/dev/null", "--log-facility=-",
        f"--port={port}", f"--listen-address={HOST}", "--bind-interfaces",
        "--no-resolv", "--no-hosts", "--local=/test/",
        *(f"--txt-record={record}" for record in records),
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dnsmasq did not start:\n{log.read_text(errors='replace')}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def binary() -> str:
    found = dnsmasq_binary()
    if found is None:
        pytest.skip("dnsmasq is not installed (CI installs Debian's dnsmasq-base)")
    return found


@pytest.fixture
def dns_port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, dns_port: int) -> Settings:
    return make_settings(database_url, dns_resolver=f"{HOST}:{dns_port}")


@pytest.fixture
def admin(client: TestClient, world: World) -> TestClient:
    world.org("acme", world.user("admin@acme.test"))
    sign_in(client, "admin@acme.test")
    return client


def add(client: TestClient, domain: str) -> str:
    """List ``domain`` for acme; answer the TXT value hubgate asks for."""
    response = client.post(BASE, json={"domain": domain})
    assert response.status_code == 201, response.text
    value: str = response.json()["txt_record"]["value"]
    return value


def verified(rt: Runtime) -> dict[str, str | None]:
    with rt.db.transaction() as db:
        return {r.domain: r.verified_by for r in db.scalars(select(OrgDomain))}


def test_the_published_token_verifies_and_others_are_refused(
    admin: TestClient, rt: Runtime, binary: str, dns_port: int, tmp_path: Path
) -> None:
    good, wrong, split = add(admin, "acme.test"), add(admin, "wrong.test"), add(admin, "split.test")
    add(admin, "missing.test")
    add(admin, "elsewhere.example")
    records = [
        f"_hubgate.acme.test,v=spf1 -all,{good}",
        f"_hubgate.acme.test,{good}",
        f"_hubgate.wrong.test,{good.replace('=', '=x', 1)}",
        f"_hubgate.wrong.test,{split}",  # another domain's token does not count
        f"_hubgate.split.test,{split[:25]},{split[25:]}",  # one record, two strings
        "acme.test,hubgate-verification=at-the-apex-not-under-_hubgate",
        f"below._hubgate.missing.test,{wrong}",  # a name below it is not the record
    ]
    with dnsmasq(binary, dns_port, records, tmp_path / "dnsmasq.log"):
        ok = admin.post(f"{BASE}/acme.test/verify")
        assert ok.status_code == 200, ok.text
        assert ok.json()["verified"] is True and ok.json()["verified_by"] == "dns"
        assert admin.post(f"{BASE}/split.test/verify").status_code == 200
        refusals = {
            domain: admin.post(f"{BASE}/{domain}/verify").json()
            for domain in ("wrong.test", "missing.test", "elsewhere.example")
        }
    assert {d: r["error"] for d, r in refusals.items()} == dict.fromkeys(
        refusals, "domain_unverified"
    )
    assert "_hubgate.wrong.test" in refusals["wrong.test"]["message"]
    assert "no TXT record" in refusals["missing.test"]["message"]
    assert "REFUSED" in refusals["elsewhere.example"]["message"]
    assert verified(rt) == {
        "acme.test": "dns", "split.test": "dns", "wrong.test": None, "missing.test": None,
        "elsewhere.example": None,
    }  # fmt: skip
    with rt.db.transaction() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "domain.verified"))
        assert sorted((e.target, json.loads(e.data)["how"]) for e in events) == [
            ("acme.test", "dns"), ("split.test", "dns")
        ]  # fmt: skip


def test_cli_verify_dns_reads_hubgate_dns_resolver(
    admin: TestClient, rt: Runtime, binary: str, dns_port: int, tmp_path: Path,
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    token = add(admin, "acme.test")
    add(admin, "missing.test")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(
        env={
            "HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url,
            "HUBGATE_DNS_RESOLVER": f"{HOST}:{dns_port}", "HUBGATE_SECRET_KEY": None,
        }
    )  # fmt: skip
    with dnsmasq(binary, dns_port, [f"_hubgate.acme.test,{token}"], tmp_path / "dnsmasq.log"):
        ok = runner.invoke(main, ["domain", "verify", "--org", "acme", "acme.test", "--dns"])
        missing = runner.invoke(
            main, ["domain", "verify", "--org", "acme", "missing.test", "--dns", "--json"]
        )
    assert ok.exit_code == 0, ok.output
    assert "acme.test: verified (dns)" in ok.stdout
    assert missing.exit_code == 1 and json.loads(missing.stderr)["error"] == "domain_unverified"
    assert verified(rt) == {"acme.test": "dns", "missing.test": None}


def test_the_sso_page_verifies_by_dns_as_well(
    admin: TestClient, rt: Runtime, binary: str, dns_port: int, tmp_path: Path
) -> None:
    """The admin page's Verify button: the same lookup (no transaction open while it
    runs), the refusal shown on the page."""
    token = add(admin, "acme.test")
    add(admin, "missing.test")
    html = {"accept": "text/html"}
    page = admin.get("/acme/sso", headers=html)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None, page.text[:500]
    form = {"csrf_token": csrf.group(1)}
    with dnsmasq(binary, dns_port, [f"_hubgate.acme.test,{token}"], tmp_path / "dnsmasq.log"):
        ok = admin.post("/acme/sso/domains/acme.test/verify", data=form, headers=html)
        missing = admin.post("/acme/sso/domains/missing.test/verify", data=form, headers=html)
    assert ok.status_code == 200 and "Domain verified." in ok.text
    assert missing.status_code == 400 and "no TXT record at _hubgate.missing.test" in missing.text
    assert verified(rt) == {"acme.test": "dns", "missing.test": None}


def test_a_silent_resolver_ends_the_lookup_at_its_lifetime(
    admin: TestClient, rt: Runtime, dns_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answers at the configured address: the lookup runs with a bounded
    lifetime (shortened here), then a clear 400."""
    monkeypatch.setattr(domains, "_DNS_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(domains, "_DNS_LIFETIME_SECONDS", 0.4)
    built: list[dns.resolver.Resolver] = []
    monkeypatch.setattr(domains, "_resolver", _recorded(domains._resolver, built))
    add(admin, "acme.test")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, dns_port))
        refused = admin.post(f"{BASE}/acme.test/verify")
    assert refused.status_code == 400 and refused.json()["error"] == "domain_unverified"
    assert "timed out" in refused.json()["message"]
    assert [(r.timeout, r.lifetime) for r in built] == [(0.2, 0.4)]
    assert verified(rt) == {"acme.test": None}


def _recorded(
    build: Callable[[tuple[str, int] | None], dns.resolver.Resolver],
    built: list[dns.resolver.Resolver],
) -> Callable[[tuple[str, int] | None], dns.resolver.Resolver]:
    def recorded(address: tuple[str, int] | None) -> dns.resolver.Resolver:
        built.append(build(address))
        return built[-1]

    return recorded
