"""The ``hubgate`` command: one module per command group (``root`` holds the group
itself and ``serve``, ``db``, ``demo``)."""

from hubgate.cli.root import main

__all__ = ["main"]
