"""hubgate's log handler writes to the stderr of the moment: set up while a CLI
runner had swapped stderr for a stream it then closed, it still logs."""

from __future__ import annotations

import io
import logging

import pytest

from hubgate.logs import CurrentStderr, configure_logging


def test_set_up_under_a_closed_stream_it_writes_to_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    handler = CurrentStderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    swapped.close()
    now = io.StringIO()
    monkeypatch.setattr("sys.stderr", now)
    handler.handle(
        logging.makeLogRecord(
            {"name": "hubgate.mail", "levelno": logging.INFO, "levelname": "INFO",
             "msg": "mail to ada@acme.example"}
        )
    )  # fmt: skip
    assert now.getvalue() == "INFO hubgate.mail: mail to ada@acme.example\n"


def test_the_hubgate_logger_writes_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("hubgate")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    configure_logging(json_logs=False)
    assert [type(h) for h in logger.handlers] == [CurrentStderr]
    assert logger.propagate is False
