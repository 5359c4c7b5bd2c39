"""PATCH (RFC 7644 §3.5.2) applied to a User or Group as scim2-models holds it: the
store renders the stored resource (:mod:`hubgate.scim.documents`), the operations
change it here, and the store checks and keeps the result like a replacement.

What Okta and Entra ID send is taken as they send it: Entra's enterprise
``manager`` by bare id (:func:`documents.parse_patch` adds its ``$ref``) and its
``members`` removed by a list of values rather than a value filter."""

from __future__ import annotations

from typing import Any

from scim2_models import SCIMException

from hubgate.scim import documents
from hubgate.scim.documents import GroupDoc, UserDoc
from hubgate.scim.errors import TooMany

__all__ = ["MAX_OPERATIONS", "patch_group", "patch_user"]

MAX_OPERATIONS = 1000
"""Most operations in one PATCH of a Group."""


def patch_user(user: UserDoc, payload: object) -> None:
    """Apply the PATCH body to ``user``; what the store does not keep from SCIM
    (its ``groups``, :data:`documents.IGNORED_USER_ATTRIBUTES`) is cleared after."""
    operations = documents.parse_patch(UserDoc, payload)
    try:
        operations.patch(user)
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
