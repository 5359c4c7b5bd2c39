"""From the original request a proxy forwards (its URI and method) to the resource
and action it touches.

====================================================  ==========================
original request                                      action
====================================================  ==========================
``/{org}/deployments/{name}/predict|invoke|generate``  ``call`` (any method)
``/{org}/deployments/{name}/v1/...``                  ``call`` (OpenAI-style API)
``DELETE /{org}/{kind}s/{name}``                      ``delete``
``GET|HEAD|OPTIONS /{org}/{kind}s/{name}[/...]``      ``read``
other methods on ``/{org}/deployments/{name}/...``    ``deploy``
other methods on ``/{org}/{kind}s/{name}/...``        ``write``
====================================================  ==========================

``{kind}s`` is ``models``, ``datasets``, ``spaces`` or ``deployments``. Any other
path maps to nothing (the gate refuses it, fail closed), and so does anything an
upstream could read as another path than the one checked: a URI that does not
start with ``/``, a ``#`` (a request line never carries a fragment), dot segments
and encoded separators.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import unquote

from hubgate.access import Action, ResourceKind

__all__ = ["MAX_URI", "Route", "map_request", "plain_segment"]

_CALL_SUFFIXES = frozenset({"predict", "invoke", "generate", "v1"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_URI = 4096


@dataclass(frozen=True, slots=True)
class Route:
    org: str
    kind: ResourceKind
    name: str
    action: Action


def map_request(uri: str, method: str) -> Route | None:
    """The resource and action an original request touches, or ``None`` if unmapped.

    Inference traffic asks about the same few paths again and again, so short
    ones are remembered (the mapping is a pure function of its two strings)."""
    if len(uri) <= _REMEMBERED_URI:
        return _remembered(uri, method)
    return _map(uri, method)


_REMEMBERED_URI = 256


@functools.lru_cache(maxsize=4096)
def _remembered(uri: str, method: str) -> Route | None:
    return _map(uri, method)


def _map(uri: str, method: str) -> Route | None:
    if not uri.startswith("/") or len(uri) > MAX_URI or "#" in uri:
        return None
    path = uri.split("?", maxsplit=1)[0]
    parts = [unquote(p) for p in path.split("/")]
    if len(parts) < 4 or parts[0] != "" or "" in parts[1:4] or not all(map(plain_segment, parts)):
        return None
    org, plural, name, rest = parts[1], parts[2], parts[3], parts[4:]
    kind = next((k for k in ResourceKind if k.plural == plural), None)
    if kind is None:
        return None
    return Route(org, kind, name, _action(kind, method.upper(), rest))


def plain_segment(segment: str) -> bool:
    """A path segment every upstream reads the same way.

    Dot segments (also ``..;`` and encoded forms), encoded slashes or
    backslashes and double encoding would let the upstream normalize the path
    into another resource than the one checked, so they fail closed.
    """
    if segment.split(";", maxsplit=1)[0] in {".", ".."}:
        return False
    return not any(c in segment for c in "/\\%") and segment.isprintable()


def _action(kind: ResourceKind, method: str, rest: list[str]) -> Action:
    if kind is ResourceKind.DEPLOYMENT and rest and rest[0] in _CALL_SUFFIXES:
        return Action.CALL
    if method == "DELETE" and not [p for p in rest if p]:
        return Action.DELETE
    if method in _READ_METHODS:
        return Action.READ
    return Action.DEPLOY if kind is ResourceKind.DEPLOYMENT else Action.WRITE
