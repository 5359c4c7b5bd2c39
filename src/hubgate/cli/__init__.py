"""The ``hubgate`` command: one module per command group, imported when a command
line names it (``root`` holds the group itself and ``serve``)."""

from hubgate.cli.root import main

__all__ = ["main"]
