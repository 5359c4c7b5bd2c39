"""JSON from outside, parsed within bounds (RFC 8259 §9: "An implementation may set
limits on the size of texts that it accepts [and] on the maximum depth of nesting").

Every document hubgate reads from a peer goes through :func:`loads`: SCIM bodies,
an IdP's discovery document, key set, token and userinfo answers, and the JOSE
segments of an id_token; the API's bodies are held to :func:`check` before FastAPI
parses them. The depth is counted without recursion before :mod:`json` sees the
text, so a ``[[[[...`` of any depth is refused, never a ``RecursionError``. The
size bound also bounds the number of items (at most one per two bytes).

    BadRequest (400)
    └── JsonRefused         invalid_json     not JSON (or not UTF-8/16/32)
        ├── JsonTooDeep     json_too_deep    nested deeper than ``max_depth``
        └── JsonTooLarge    json_too_large   over ``max_bytes``
"""

from __future__ import annotations

import json
import re
from typing import Any

from hubgate.errors import BadRequest

__all__ = ["MAX_BYTES", "MAX_DEPTH", "JsonRefused", "JsonTooDeep", "JsonTooLarge", "check", "loads"]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""No SCIM resource, OIDC document or JWT hubgate reads nests beyond 5 levels."""
# A string (its closing quote optional, so an unterminated one costs one pass, not
# one per quote after it) or one bracket. Inside a string no bracket counts.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class JsonRefused(BadRequest):
    default_code = "invalid_json"
    default_message = "The document is not valid JSON."


class JsonTooDeep(JsonRefused):
    default_code = "json_too_deep"
    default_message = f"The JSON document nests deeper than {MAX_DEPTH} levels."


class JsonTooLarge(JsonRefused):
    default_code = "json_too_large"
    default_message = "The JSON document is too large."


def loads(document: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed ``document``, or :class:`JsonRefused` (never ``RecursionError``)."""
    text = _text(document, max_bytes)
    _check_depth(text, max_depth)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JsonRefused() from exc


def check(document: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> None:
    """The bounds of :func:`loads` without parsing: for a parser that is not ours."""
    _check_depth(_text(document, max_bytes), max_depth)


def _text(document: bytes | str, max_bytes: int) -> str:
    if len(document) > max_bytes:
        raise JsonTooLarge(f"The JSON document is over {max_bytes} bytes.")
    if isinstance(document, str):
        return document
    try:
        return document.decode(json.detect_encoding(document))
    except UnicodeDecodeError as exc:
        raise JsonRefused("The document is not UTF-8 text.") from exc


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # no more openings than the bound at all (strings' brackets included)
    depth = 0
    for token in _STRUCTURE.finditer(text):
        bracket = text[token.start()]
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(f"The JSON document nests deeper than {max_depth} levels.")
        elif bracket in "]}":
            depth -= 1
