"""hubgate's log handler writes to the stderr of the moment: set up while a CLI
runner had swapped stderr for a stream it then closed, it still logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from hubgate.logs import configure_logging


@pytest.fixture
def fresh_hubgate_logger() -> Iterator[logging.Logger]:
    """The ``hubgate`` logger with no handler yet, as at start. (A test before this one
    may have run uvicorn's logging set-up, which disables the loggers that existed
    then: this test logs through a child created here, after any such set-up.)"""
    logger = logging.getLogger("hubgate")
    saved = (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
    logger.handlers.clear()
    yield logger
    logger.handlers[:], logger.level, logger.propagate, logger.disabled = saved


def test_set_up_under_a_closed_stream_it_logs_to_the_current_one(
    fresh_hubgate_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    configure_logging(json_logs=False)
    swapped.close()
    now = io.StringIO()
    monkeypatch.setattr("sys.stderr", now)
    logging.getLogger("hubgate.test_logs").info("mail to ada@acme.example")
    assert now.getvalue() == "INFO hubgate.test_logs: mail to ada@acme.example\n"
