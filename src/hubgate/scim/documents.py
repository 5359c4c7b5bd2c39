"""SCIM documents in and out, through scim2-models (RFC 7643): requests are
validated in their context (creation, replacement, patch), responses built from
what the store gives back (:class:`UserRecord`, :class:`GroupRecord`). No SCIM JSON
is written by hand here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, NamedTuple, TypeVar

from pydantic import StringConstraints, ValidationError
from scim2_models import (
    BaseModel,
    ComplexAttribute,
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
from scim2_models import Email as CoreEmail

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
    "Email",
    "GroupDoc",
    "GroupRecord",
    "Ref",
    "UserDoc",
    "UserRecord",
    "check_if_match",
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


class EmailDoc(CoreEmail):
    """One of a User's ``emails`` (RFC 7643 §4.1.2) whose ``value`` is any string
    here: which addresses hubgate takes is decided by one rule for every address
    (:func:`hubgate.accounts.emails.accepted_email`, applied by the store), not by
    pydantic's ``EmailStr``, which refuses ``.test`` even where that rule takes it.
    Kept as sent, but for the white space around it (which ``EmailStr`` dropped too)."""

    value: Annotated[str, StringConstraints(strip_whitespace=True)] | None = None


class UserDoc(User[EnterpriseUser]):
    """The core User with the enterprise extension, its ``emails`` as :class:`EmailDoc`."""

    emails: list[EmailDoc] | None = None  # type: ignore[assignment]
    Emails: ClassVar[type[ComplexAttribute]] = EmailDoc


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


_Model = TypeVar("_Model", bound=BaseModel)


def _validate(model: type[_Model], payload: object, context: Context) -> _Model:
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


_Resource = TypeVar("_Resource", UserDoc, GroupDoc)
_ENTERPRISE = str(EnterpriseUser.__schema__)
_MANAGER_PATHS = {f"{_ENTERPRISE}:manager".lower(), "manager"}


def _manager(value: object) -> object:
    """Entra ID names the enterprise manager by id alone (``{"value": id}``, or in a
    PATCH the bare id); RFC 7643 §4.3 requires its ``$ref``, filled in here as the
    RFC's own example writes it. Anything else is left for scim2-models to judge."""
    if isinstance(value, str):
        value = {"value": value}
    if isinstance(value, dict) and isinstance(value.get("value"), str) and "$ref" not in value:
        return {**value, "$ref": f"../Users/{value['value']}"}
    return value


def _with_manager_ref(payload: object) -> object:
    if not isinstance(payload, dict):
        return payload
    extension = payload.get(_ENTERPRISE)
    if not isinstance(extension, dict) or "manager" not in extension:
        return payload
    return {**payload, _ENTERPRISE: {**extension, "manager": _manager(extension["manager"])}}


def _patch_with_manager_ref(payload: object) -> object:
    if not isinstance(payload, dict):
        return payload
    operations = payload.get("Operations")
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


def parse_user(payload: object, *, replacing: bool = False) -> UserDoc:
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    )
    user = _validate(UserDoc, _with_manager_ref(payload), context)
    for name in IGNORED_USER_ATTRIBUTES:
        setattr(user, name, None)
    return user


def parse_group(payload: object, *, replacing: bool = False) -> GroupDoc:
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    )
    return _validate(GroupDoc, payload, context)


def parse_patch(model: type[_Resource], payload: object) -> PatchOp[_Resource]:
    if model is UserDoc:
        payload = _patch_with_manager_ref(payload)
    operations: type[PatchOp[_Resource]] = PatchOp[model]  # type: ignore[valid-type]
    return _validate(operations, payload, Context.RESOURCE_PATCH_REQUEST)


def parse_search(model: Any, payload: object) -> tuple[SearchRequest[Any], str | None]:
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


class Ref(NamedTuple):
    """Another resource, named in a User's ``groups`` or a Group's ``members``."""

    id: str
    display: str | None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A User as the store keeps it: its attributes as :func:`stored_user` wrote
    them, the Groups it is in, and what ``meta`` tells (RFC 7643 §3.1)."""

    id: str
    attributes: str
    groups: list[Ref]
    created: datetime
    last_modified: datetime
    version: int


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A Group as the store keeps it: its names, its member Users and its ``meta``."""

    id: str
    display_name: str
    external_id: str | None
    members: list[Ref]
    created: datetime
    last_modified: datetime
    version: int


def _meta(kind: str, location: str, record: UserRecord | GroupRecord) -> Meta:
    return Meta(
        resource_type=kind, created=record.created, last_modified=record.last_modified,
        location=location, version=etag(record.version),
    )  # fmt: skip


def etag(version: int) -> str:
    """The weak entity tag of a resource's version (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def check_if_match(version: int, if_match: str | None) -> None:
    """RFC 7644 §3.14: a write with ``If-Match`` applies only to that version (or
    ``*``, any)."""
    if if_match and if_match.strip() not in ("*", etag(version)):
        raise PreconditionFailed()


def user_model(record: UserRecord, base: str) -> UserDoc:
    """The stored User as a scim2-models object (for responses and for PATCH)."""
    stored: dict[str, Any] = {**json.loads(record.attributes), "id": record.id}
    user = UserDoc.model_validate(stored, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    user.meta = _meta("User", f"{base}/Users/{record.id}", record)
    user.groups = [
        GroupMembership(value=gid, display=name, ref=f"{base}/Groups/{gid}")
        for gid, name in record.groups
    ] or None
    return user


def user_document(record: UserRecord, base: str) -> dict[str, Any]:
    dumped: dict[str, Any] = user_model(record, base).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return dumped


def stored_user(user: UserDoc) -> str:
    """What is kept of a validated User: everything but server-set attributes."""
    user.id, user.meta, user.groups = None, None, None
    return json.dumps(user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def group_model(record: GroupRecord, base: str) -> GroupDoc:
    group = GroupDoc(display_name=record.display_name, external_id=record.external_id)
    group.id = record.id
    group.meta = _meta("Group", f"{base}/Groups/{record.id}", record)
    group.members = [
        GroupMember(value=uid, display=name, ref=f"{base}/Users/{uid}", type="User")
        for uid, name in record.members
    ] or None
    return group


def group_document(record: GroupRecord, base: str) -> dict[str, Any]:
    dumped: dict[str, Any] = group_model(record, base).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return dumped


class Email(NamedTuple):
    """One of a User's ``emails`` (RFC 7643 §4.1.2), as the store indexes them."""

    value: str
    type: str
    primary: bool


def emails_of(user: UserDoc) -> list[Email]:
    """The User's first 20 emails that have a value; ``type`` is "" when not given."""
    found = []
    for email in (user.emails or [])[:20]:
        if email.value:
            kind = str(getattr(email.type, "value", email.type) or "")
            found.append(Email(str(email.value), kind, bool(email.primary)))
    return found
