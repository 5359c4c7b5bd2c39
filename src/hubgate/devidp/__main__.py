"""``python -m hubgate.devidp``: the same as ``hubgate dev-idp`` (``hubgate demo``
starts it this way as a child process)."""

from hubgate.cli.devidp import dev_idp

dev_idp(prog_name="hubgate dev-idp")
