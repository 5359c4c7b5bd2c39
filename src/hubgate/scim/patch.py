"""PATCH (RFC 7644 §3.5.2) applied to a User or Group as scim2-models holds it: the
store renders the stored resource (:mod:`hubgate.scim.documents`), the operations
change it here, and the store checks and keeps the result like a replacement.

What Okta and Entra ID send is taken as they send it: Entra's enterprise
``manager`` by bare id (:func:`documents.parse_patch` adds its ``$ref``), its
``members`` removed by a list of values rather than a value filter, its value
objects keyed by paths with value filters (:func:`_one_path_per_key`), and its
``add`` or ``replace`` of an address no value matches yet (:data:`_ENTRA`).

Every operation is bounded: its path (:data:`MAX_PATH`), the keys of a value
without a path (:data:`MAX_VALUE_KEYS`), and their number (:data:`MAX_OPERATIONS`,
:data:`MAX_USER_OPERATIONS`); beyond a bound the PATCH is refused whole."""

from __future__ import annotations

from typing import Any

from scim2_models import SCIMException, ScimPolicy

from hubgate.scim import documents
from hubgate.scim.documents import GroupDoc, UserDoc
from hubgate.scim.errors import InvalidPath, InvalidValue, TooMany

__all__ = [
    "MAX_OPERATIONS", "MAX_PATH", "MAX_USER_OPERATIONS", "MAX_VALUE_KEYS", "patch_group",
    "patch_user",
]  # fmt: skip

MAX_OPERATIONS = 1000
"""Most operations in one PATCH of a Group."""
MAX_USER_OPERATIONS = 100
"""Most operations in one PATCH of a User, counted once a value keyed by paths is
split (an IdP sends one operation per attribute it maps, a few dozen at most)."""
MAX_VALUE_KEYS = 100
"""Most attributes (names or paths) in the value of an operation without a path."""
MAX_PATH = 512
"""Longest path, of an operation or as a key of its value, in characters."""

_ENTRA = ScimPolicy(unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)
"""An ``add`` or ``replace`` whose value filter matches none of the User's values
creates the value the filter describes, then writes the operation's value into it:
``{"op": "Replace", "path": "emails[type eq \\"work\\"].value", "value": a}`` on a
User with no work email gives it ``{"type": "work", "value": a}``.

For ``add`` this is RFC 7644 §3.5.2.1: a target that does not exist is added. For
``replace``, §3.5.2.3 asks for ``noTarget``; Entra ID sends ``replace`` both to
change an address and to set the first one, and expects the second to create it
(Microsoft's SCIM guidance, and the same section's "an attribute that does not
exist" is treated as an ``add``). Only a filter that describes a single value,
``eq`` comparisons of sub-attributes joined by ``and`` (the form Entra sends),
creates one; any other filter that matches nothing is still ``noTarget``, as the
RFC says, and a value that contradicts its filter is ``invalidValue``."""


def patch_user(user: UserDoc, payload: object) -> None:
    """Apply the PATCH body to ``user``; what the store does not keep from SCIM
    (its ``groups``, :data:`documents.IGNORED_USER_ATTRIBUTES`) is cleared after."""
    operations = documents.parse_patch(UserDoc, _one_path_per_key(payload))
    try:
        operations.patch(user, scim_policy=_ENTRA)
    except SCIMException as exc:
        raise documents.scim_error(exc) from exc
    for name in documents.IGNORED_USER_ATTRIBUTES:
        setattr(user, name, None)


def patch_group(group: GroupDoc, payload: dict[str, Any]) -> None:
    """Apply the PATCH body to ``group``, at most :data:`MAX_OPERATIONS` of them;
    Entra's removals by value list are applied in their turn among the others."""
    operations = payload.get("Operations")
    if isinstance(operations, list) and len(operations) > MAX_OPERATIONS:
        raise TooMany(f"At most {MAX_OPERATIONS} operations per PATCH.")
    if not isinstance(operations, list) or not operations:
        _patch(group, payload)  # scim2-models answers for the body as it is
    pending: list[object] = []
    for operation in operations if isinstance(operations, list) else []:
        _check_path(operation.get("path") if isinstance(operation, dict) else None)
        removed = _members_removed_by_value(operation)
        if removed is None:
            pending.append(operation)
            continue
        if pending:
            _patch(group, {**payload, "Operations": pending})
            pending = []
        group.members = [m for m in group.members or [] if m.value not in removed] or None
    if pending:
        _patch(group, {**payload, "Operations": pending})


def _patch(group: GroupDoc, body: dict[str, Any]) -> None:
    try:
        documents.parse_patch(GroupDoc, body).patch(group)
    except SCIMException as exc:
        raise documents.scim_error(exc) from exc


def _check_path(path: object) -> None:
    """A path longer than :data:`MAX_PATH` is refused before it is parsed."""
    if isinstance(path, str) and len(path) > MAX_PATH:
        raise InvalidPath(f"A path is at most {MAX_PATH} characters.")


def _one_path_per_key(payload: object) -> object:
    """The body with each value keyed by paths split (:func:`_split`), bounded; a body
    that is not a PatchOp is left for scim2-models to refuse."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        return payload
    if len(payload["Operations"]) > MAX_USER_OPERATIONS:
        raise TooMany(f"At most {MAX_USER_OPERATIONS} operations per PATCH of a User.")
    operations = [part for operation in payload["Operations"] for part in _split(operation)]
    if len(operations) > MAX_USER_OPERATIONS:
        raise TooMany(f"At most {MAX_USER_OPERATIONS} operations per PATCH of a User.")
    return {**payload, "Operations": operations}


def _split(operation: object) -> list[object]:
    """RFC 7644 §3.5.2.1 and §3.5.2.3: an ``add`` or ``replace`` without a path
    writes its value, an object keyed by attribute names, at the resource itself.
    Entra ID keys it by paths, value filters included
    (``{"emails[type eq \\"work\\"].value": a, "name.givenName": g}``): each such
    key is applied as an operation of its own (:func:`_by_key`)."""
    if not isinstance(operation, dict):
        return [operation]
    _check_path(operation.get("path"))
    value = operation.get("value")
    if operation.get("path") is not None or not isinstance(value, dict):
        return [operation]
    if str(operation.get("op")).lower() not in ("add", "replace"):
        return [operation]
    if len(value) > MAX_VALUE_KEYS:
        raise InvalidValue(f"A value without a path names at most {MAX_VALUE_KEYS} attributes.")
    for key in value:
        _check_path(key)
    return _by_key(operation, value) if any("[" in key for key in value) else [operation]


def _by_key(operation: dict[str, Any], value: dict[str, Any]) -> list[object]:
    """A key with a value filter becomes an operation on that path, in the key's
    turn; the keys between such keys stay together, in an operation without a path
    that scim2-models writes as the RFC says."""
    parts: list[object] = []
    together: dict[str, Any] = {}
    for key, item in value.items():
        if "[" not in key:
            together[key] = item
            continue
        if together:
            parts.append({**operation, "value": together})
            together = {}
        parts.append({**operation, "path": key, "value": item})
    if together:
        parts.append({**operation, "value": together})
    return parts


def _members_removed_by_value(operation: object) -> set[str] | None:
    """Entra ID removes members as ``{"op": "Remove", "path": "members", "value":
    [{"value": id}, ...]}``, which RFC 7644 §3.5.2.2 spells with a value filter;
    the ids it names, or None for any other operation."""
    if not isinstance(operation, dict) or not isinstance(operation.get("value"), list):
        return None
    if str(operation.get("op")).lower() != "remove":
        return None
    if str(operation.get("path", "")).strip().lower() != "members":
        return None
    values = operation["value"]
    if not all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in values):
        return None
    return {v["value"] for v in values}
