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
    logger = logging.getLogger("hubgate")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers.clear()
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def test_set_up_under_a_closed_stream_it_logs_to_the_current_one(
    fresh_hubgate_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    configure_logging(json_logs=False)
    swapped.close()
    now = io.StringIO()
    monkeypatch.setattr("sys.stderr", now)
    logging.getLogger("hubgate.mail").info("mail to ada@acme.example")
    assert now.getvalue() == "INFO hubgate.mail: mail to ada@acme.example\n"
