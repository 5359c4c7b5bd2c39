"""The service provider's self-description (RFC 7644 §4): ServiceProviderConfig,
ResourceTypes and Schemas, built from scim2-models and announcing hubgate's limits."""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Meta,
    Mutability,
    Patch,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

from hubgate.scim.documents import IGNORED_USER_ATTRIBUTES

__all__ = [
    "MAX_COUNT", "MAX_MEMBERS_PER_REQUEST", "resource_types", "schemas", "service_provider_config",
]  # fmt: skip

MAX_COUNT = 1000
"""Most resources in one page of a list or search (``filter.maxResults``)."""
MAX_MEMBERS_PER_REQUEST = 20_000
"""Most members one Group write (POST, PUT or PATCH) may hold."""

_QUERY = Context.RESOURCE_QUERY_RESPONSE


def service_provider_config(base: str) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="OAuth Bearer Token",
                primary=True,
                description="A per-organization SCIM token (hgscim_...) as "
                f"'Authorization: Bearer'; at most {MAX_MEMBERS_PER_REQUEST} group members "
                "per request.",
            )  # fmt: skip
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base}/ServiceProviderConfig"),
    )
    dumped: dict[str, Any] = config.model_dump(scim_ctx=_QUERY)
    return dumped


def resource_types(base: str) -> list[dict[str, Any]]:
    found = []
    for model in (User[EnterpriseUser], Group):
        kind = ResourceType.from_resource(model)
        kind.meta = Meta(resource_type="ResourceType", location=f"{base}/ResourceTypes/{kind.id}")
        found.append(kind.model_dump(scim_ctx=_QUERY))
    return found


def schemas(base: str) -> list[dict[str, Any]]:
    """RFC 7643 §7: the attributes hubgate keeps, as it keeps them. Those it drops
    (roles, entitlements, certificates, passwords: access never comes from SCIM)
    are not announced; a Group's members are Users only, their ``display`` the
    User's, so read-only."""
    found = []
    for schema in (_user_schema(), _group_schema(), EnterpriseUser.to_schema()):
        schema.meta = Meta(resource_type="Schema", location=f"{base}/Schemas/{schema.id}")
        found.append(schema.model_dump(scim_ctx=_QUERY))
    return found


def _user_schema() -> Schema:
    schema = User.to_schema()
    dropped = {_camel(name) for name in IGNORED_USER_ATTRIBUTES if name != "groups"}
    schema.attributes = [a for a in schema.attributes or [] if a.name not in dropped]
    return schema


def _group_schema() -> Schema:
    schema = Group.to_schema()
    for attribute in schema.attributes or []:
        for sub in attribute.sub_attributes or [] if attribute.name == "members" else []:
            if sub.name == "display":
                sub.mutability = Mutability.read_only
            elif sub.name == "$ref":
                sub.reference_types = ["User"]
            elif sub.name == "type":
                sub.canonical_values = ["User"]
    return schema


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
