"""Logging: plain lines by default, one JSON object per line with ``HUBGATE_JSON_LOGS``."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["configure_logging"]


class CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is when a record arrives, not as it was when
    logging was set up: a CLI command run inside a runner that swaps stderr and
    then closes it (``hubgate demo`` under click's CliRunner) leaves no handler
    writing to a closed stream."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """``StreamHandler`` sets the stream it was given; the current one is used."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(*, json_logs: bool, level: int = logging.INFO) -> None:
    root = logging.getLogger("hubgate")
    root.setLevel(level)
    if root.handlers:
        return
    handler = CurrentStderr()
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.propagate = False
