"""Free loopback ports for the servers the tests start, outside the kernel's
ephemeral range.

A port that ``bind((host, 0))`` hands out and the test releases again comes from the
ephemeral range, where the kernel also picks the local port of every outgoing
connection (a database client, a health check, a browser). Between the release and
the server's own bind, one of those can take it: CI saw uvicorn fail with "address
already in use". Ports below the range are never handed out that way, so one is
picked there at random and checked free."""

from __future__ import annotations

import random
import socket
from functools import cache
from pathlib import Path

__all__ = ["free_port"]

_LOWEST = 10_000
"""Below this sit well-known services (PostgreSQL 5432, Redis 6379, RabbitMQ 5672)."""
_PICK = random.SystemRandom()
"""The operating system's randomness, not the module's generator: a test (or
Hypothesis) seeding that one cannot make two test processes pick the same ports."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing is bound to right now, outside the
    ephemeral range."""
    candidates = _candidates()
    for _ in range(200):
        port = _PICK.choice(candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port on {host} outside the ephemeral range")


@cache
def _candidates() -> range:
    """The ports below the ephemeral range, or above it when it starts too low."""
    low, high = 32_768, 60_999  # Linux's default
    settings = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if settings.exists():
        low, high = (int(value) for value in settings.read_text().split())
    if low - _LOWEST >= 5_000:
        return range(_LOWEST, low)
    return range(high + 1, 65_536)
