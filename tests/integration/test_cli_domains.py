"""``hubgate domain ...`` driven from the outside, against a migrated database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from hubgate.cli.root import main
from hubgate.db.models import AuditEvent
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD

ADMIN = "alice@example.com"


class Hubgate:
    """``hubgate ARGS`` in dev mode on the per-test database, with no HUBGATE_* leaking in."""

    def __init__(self, database_url: str, dns_resolver: str | None = None) -> None:
        env = {
            "HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url,
            "HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1",
            "HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None,
            "HUBGATE_DNS_RESOLVER": dns_resolver,
        }  # fmt: skip
        self.runner = CliRunner(env=env)

    def __call__(self, *args: str, ok: bool = True, stdin: str | None = None) -> Result:
        result = self.runner.invoke(main, list(args), input=stdin)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def hubgate(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hubgate:
    """The CLI with an org ``acme`` (admin alice) and an org ``rival``."""
    monkeypatch.chdir(tmp_path)
    run = Hubgate(database_url)
    run("user", "create", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
    run("org", "create", "acme", "--admin", ADMIN)
    run("org", "create", "rival", "--admin", ADMIN)
    return run


def test_add_verify_list_remove(hubgate: Hubgate, rt: Runtime) -> None:
    added = hubgate.json("domain", "add", "--org", "acme", "Bücher.Example.")
    assert added["domain"] == "xn--bcher-kva.example" and added["verified"] is False
    text = hubgate("domain", "add", "--org", "acme", "bücher.example").stdout
    assert f'{added["txt_record"]["name"]} = "{added["txt_record"]["value"]}"' in text
    verified = hubgate.json("domain", "verify", "--org", "acme", "bücher.example")
    assert verified["verified"] is True and verified["verified_by"] == "operator"
    listed = hubgate.json("domain", "list", "--org", "acme")
    assert [(d["domain"], d["verified_by"]) for d in listed] == [
        ("xn--bcher-kva.example", "operator")
    ]
    table = hubgate("domain", "list", "--org", "acme").stdout.splitlines()
    assert table[0].split() == ["DOMAIN", "VERIFIED", "TXT", "VALUE"]
    assert hubgate.json("domain", "remove", "--org", "acme", "xn--bcher-kva.example")["removed"]
    assert hubgate.json("domain", "list", "--org", "acme") == []
    with rt.db.transaction() as db:
        actions = list(
            db.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.actor == "operator:cli")
                .order_by(AuditEvent.id)
            )
        )
    assert [a for a in actions if a.startswith("domain.")] == [
        "domain.added", "domain.verified", "domain.removed"
    ]  # fmt: skip


def test_refusals_are_one_clean_line_and_change_nothing(hubgate: Hubgate) -> None:
    hubgate("domain", "add", "--org", "acme", "acme.test")
    hubgate("domain", "verify", "--org", "acme", "acme.test")
    hubgate("domain", "add", "--org", "rival", "other.test")
    for args, code in [
        (["domain", "add", "--org", "rival", "ACME.test"], "domain_claimed"),
        (["domain", "add", "--org", "acme", "bu\u0308cher.example"], "invalid_domain"),
        (["domain", "verify", "--org", "acme", "missing.test"], "not_found"),
        (["domain", "remove", "--org", "nope", "acme.test"], "not_found"),
    ]:
        refused = hubgate(*args, "--json", ok=False)
        assert refused.exit_code == 1, args
        assert json.loads(refused.stderr)["error"] == code, args
    listed = {o: hubgate.json("domain", "list", "--org", o) for o in ("acme", "rival")}
    assert [(d["domain"], d["verified"]) for d in listed["acme"]] == [("acme.test", True)]
    assert [(d["domain"], d["verified"]) for d in listed["rival"]] == [("other.test", False)]


def test_every_domain_command_has_help(hubgate: Hubgate) -> None:
    for command in ("add", "verify", "list", "remove"):
        assert "--org" in hubgate("domain", command, "--help").stdout
    assert "--dns" in hubgate("domain", "verify", "--help").stdout
