"""SCIM documents in and out, through scim2-models (RFC 7643): requests are
validated in their context (creation, replacement, patch), responses built from
the stored rows. No SCIM JSON is written by hand here."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    EnterpriseUser,
    Group,
    GroupMember,
    GroupMembership,
    Meta,
    PatchOp,
    SCIMException,
    SearchRequest,
    User,
)

from hubgate.db.models import ScimGroup, ScimUser, ScimUserEmail
from hubgate.scim.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    PreconditionFailed,
    ScimError,
    ScimNotFound,
    ScimUnauthorized,
    TooMany,
    Uniqueness,
)

__all__ = [
    "IGNORED_USER_ATTRIBUTES",
    "GroupDoc",
    "UserDoc",
    "emails_of",
    "etag",
    "group_document",
    "group_model",
    "parse_group",
    "parse_patch",
    "parse_search",
    "parse_user",
    "scim_error",
    "stored_user",
    "user_document",
    "user_model",
]

UserDoc = User[EnterpriseUser]
GroupDoc = Group
# Access never comes from SCIM attributes (DESIGN.md: roles follow group mappings).
IGNORED_USER_ATTRIBUTES = ("roles", "entitlements", "x509_certificates", "password", "groups")


# scim2-models reports its refusals inside pydantic errors typed ``scim_<scimType>``.
_BY_SCIM_TYPE: dict[str, type[ScimError]] = {
    kind.scim_type or "": kind
    for kind in (InvalidFilter, InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget,
                 TooMany, Uniqueness)
}  # fmt: skip
# RFC 7644 Table 8: the statuses that come with no scimType.
_BY_STATUS: dict[int, type[ScimError]] = {
    401: ScimUnauthorized, 404: ScimNotFound, 412: PreconditionFailed,
}  # fmt: skip


def scim_error(exc: SCIMException) -> ScimError:
    """scim2-models' refusal as hubgate's error of the same scimType (or status),
    with its detail; one hubgate does not name is a 400 ``invalidValue``."""
    kind = _BY_SCIM_TYPE.get(exc.scim_type) or _BY_STATUS.get(exc.status, ScimError)
    return kind(exc.detail)


def _without_empty_schemas(payload: dict[str, Any]) -> dict[str, Any]:
    """Entra ID lists a schema of its own on Groups (``.../ADSCIM/2.0/Group``) with
    no attribute under it: a URN hubgate does not know and the body does not use
    is dropped; an unknown extension that carries attributes is still refused."""
    schemas = payload.get("schemas")
    if not isinstance(schemas, list):
        return payload
    known = {str(m.__schema__) for m in (User, Group, EnterpriseUser)}
    kept = [u for u in schemas if not isinstance(u, str) or u in known or u in payload]
    return {**payload, "schemas": kept}


def _validate(model: Any, payload: Any, context: Context) -> Any:
    if not isinstance(payload, dict):
        raise InvalidSyntax("The body must be a JSON object.")
    payload = _without_empty_schemas(payload)
    try:
        return model.model_validate(payload, scim_ctx=context)
    except SCIMException as exc:
        raise scim_error(exc) from exc
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0] if problems else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        message = first["msg"] if first else "not valid"
        kind = _BY_SCIM_TYPE.get(str(first["type"]).removeprefix("scim_")) if first else None
        raise (kind or InvalidValue)(f"{where or 'body'}: {message}"[:300]) from exc


_ENTERPRISE = str(EnterpriseUser.__schema__)
_MANAGER_PATHS = {f"{_ENTERPRISE}:manager".lower(), "manager"}


def _manager(value: Any) -> Any:
    """Entra ID names the enterprise manager by id alone (``{"value": id}``, or in a
    PATCH the bare id); RFC 7643 §4.3 requires its ``$ref``, filled in here as the
    RFC's own example writes it. Anything else is left for scim2-models to judge."""
    if isinstance(value, str):
        value = {"value": value}
    if isinstance(value, dict) and isinstance(value.get("value"), str) and "$ref" not in value:
        return {**value, "$ref": f"../Users/{value['value']}"}
    return value


def _with_manager_ref(payload: Any) -> Any:
    extension = payload.get(_ENTERPRISE) if isinstance(payload, dict) else None
    if not isinstance(extension, dict) or "manager" not in extension:
        return payload
    return {**payload, _ENTERPRISE: {**extension, "manager": _manager(extension["manager"])}}


def _patch_with_manager_ref(payload: Any) -> Any:
    operations = payload.get("Operations") if isinstance(payload, dict) else None
    if not isinstance(operations, list):
        return payload
    mended = [
        {**op, "value": _manager(op["value"])}
        if isinstance(op, dict)
        and isinstance(op.get("path"), str)
        and op["path"].lower() in _MANAGER_PATHS
        and "value" in op
        else op
        for op in operations
    ]
    return {**payload, "Operations": mended}


def parse_user(payload: Any, *, replacing: bool = False) -> Any:
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    )
    user = _validate(UserDoc, _with_manager_ref(payload), context)
    for name in IGNORED_USER_ATTRIBUTES:
        setattr(user, name, None)
    return user


def parse_group(payload: Any, *, replacing: bool = False) -> Any:
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    )
    return _validate(GroupDoc, payload, context)


def parse_patch(model: Any, payload: Any) -> Any:
    if model is UserDoc:
        payload = _patch_with_manager_ref(payload)
    return _validate(PatchOp[model], payload, Context.RESOURCE_PATCH_REQUEST)


def parse_search(model: Any, payload: Any) -> tuple[Any, str | None]:
    """RFC 7644 §3.4.3: a SearchRequest body for ``model`` (a union at the root).
    The filter is kept as text for :mod:`hubgate.scim.filters` to bound, parse
    and translate; the rest is scim2-models'."""
    if not isinstance(payload, dict):
        raise InvalidSyntax("The body must be a JSON object.")
    text = payload.get("filter")
    if text is not None and (not isinstance(text, str) or len(text) > 4096):
        raise InvalidFilter("The filter must be a string of at most 4096 characters.")
    rest = {k: v for k, v in payload.items() if k != "filter"}
    return _validate(SearchRequest[model], rest, Context.SEARCH_REQUEST), text or None


def _meta(kind: str, location: str, row: ScimUser | ScimGroup) -> Meta:
    return Meta(
        resource_type=kind, created=row.created_at, last_modified=row.updated_at,
        location=location, version=etag(row),
    )  # fmt: skip


def etag(row: ScimUser | ScimGroup) -> str:
    return f'W/"{row.version}"'


def user_model(row: ScimUser, groups: list[tuple[str, str]], base: str) -> Any:
    """The stored User as a scim2-models object (for responses and for PATCH)."""
    stored: dict[str, Any] = {**json.loads(row.extra), "id": row.id}
    user = UserDoc.model_validate(stored, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    user.meta = _meta("User", f"{base}/Users/{row.id}", row)
    user.groups = [
        GroupMembership(value=gid, display=name, ref=f"{base}/Groups/{gid}") for gid, name in groups
    ] or None
    return user


def user_document(row: ScimUser, groups: list[tuple[str, str]], base: str) -> dict[str, Any]:
    dumped: dict[str, Any] = user_model(row, groups, base).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return dumped


def stored_user(user: Any) -> str:
    """What is kept of a validated User: everything but server-set attributes."""
    user.id, user.meta, user.groups = None, None, None
    return json.dumps(user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def group_model(row: ScimGroup, members: list[tuple[str, str | None]], base: str) -> Any:
    group = GroupDoc(display_name=row.display_name, external_id=row.external_id)
    group.id = row.id
    group.meta = _meta("Group", f"{base}/Groups/{row.id}", row)
    group.members = [
        GroupMember(value=uid, display=name, ref=f"{base}/Users/{uid}", type="User")
        for uid, name in members
    ] or None
    return group


def group_document(
    row: ScimGroup, members: list[tuple[str, str | None]], base: str
) -> dict[str, Any]:
    dumped: dict[str, Any] = group_model(row, members, base).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return dumped


def emails_of(user: Any) -> list[ScimUserEmail]:
    rows = []
    for email in (user.emails or [])[:20]:
        if email.value:
            value = str(email.value)
            kind = str(email.type.value if hasattr(email.type, "value") else email.type or "")
            rows.append(
                ScimUserEmail(
                    value=value[:254],
                    value_key=value.lower()[:254],
                    type=kind[:32] or None,
                    primary=bool(email.primary),
                )  # fmt: skip
            )
    return rows
