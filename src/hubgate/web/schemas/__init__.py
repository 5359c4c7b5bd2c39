"""Request and response documents of the JSON API (``XCreate`` / ``XUpdate`` / ``XPublic``).

Accounts, orgs, teams, resources, tokens and audit here; SSO connections and
policy in :mod:`.sso`, domains in :mod:`.domains`, SCIM settings in :mod:`.scim`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from hubgate.access import ORG_ROLE_NAMES, TEAM_ROLE_NAMES, ResourceKind, Visibility

MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
"""A database id in a path: bounded, so no value can overflow the column."""
Str = Annotated[str, Field(max_length=320)]
Name = Annotated[str, Field(min_length=1, max_length=96)]
Password = Annotated[str, Field(max_length=256)]
IsoInstant = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An instant written as ``datetime.isoformat()`` does (``+00:00``, not ``Z``)."""
OrgRoleName = Annotated[str, Field(pattern=f"^({'|'.join(ORG_ROLE_NAMES)})$")]
TeamRoleName = Annotated[str, Field(pattern=f"^({'|'.join(TEAM_ROLE_NAMES)})$")]


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain NUL characters")
        return value


class UserCreate(Strict):
    email: Str
    password: Password
    display_name: Annotated[str | None, Field(max_length=120)] = None


class LoginRequest(Strict):
    email: Str
    password: Password


class EmailCreate(Strict):
    email: Str


class EmailVerify(Strict):
    token: Annotated[str, Field(max_length=128)]


class EmailPublic(BaseModel):
    address: str
    verified: bool
    primary: bool


class MembershipSummary(BaseModel):
    org: str
    role: str
    teams: dict[str, str]
    sso: str
    sso_fresh_until: datetime | None = None
    # The IdP's own session ends it before the org's timeout would.
    sso_fresh_until_idp_session: bool = False


class MePublic(BaseModel):
    id: int
    display_name: str
    emails: list[EmailPublic]
    orgs: list[MembershipSummary]
    credential: str
    csrf_token: str | None = None


class PasswordResetRequest(Strict):
    email: Str


class PasswordResetConfirm(Strict):
    token: Annotated[str, Field(max_length=1024)]
    """Any text: a malformed link is refused as ``reset_link_invalid``."""
    password: Password


class PasswordChange(Strict):
    current_password: Password
    password: Password


class MessagePublic(BaseModel):
    message: str


class SessionSsoPublic(BaseModel):
    org: str
    connection: str | None
    authenticated_at: datetime
    fresh_until: datetime


class SessionPublic(BaseModel):
    id: int
    created_at: datetime
    last_used_at: datetime
    client: str
    client_address: str | None
    current: bool
    sso: list[SessionSsoPublic]


class SsoLinkPublic(BaseModel):
    id: int
    org: str
    connection: str
    subject: str
    linked_at: datetime
    last_sign_in_at: datetime


class EndedPublic(BaseModel):
    ended: int


class OrgCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: Annotated[str | None, Field(max_length=120)] = None


class OrgPublic(BaseModel):
    name: str
    display_name: str
    created_at: datetime
    # For those who may read the org: 0 once SCIM deprovisioned its last admin.
    active_admins: int | None = None


class MemberAdd(Strict):
    email: Str
    role: OrgRoleName = "write"


class MemberUpdate(Strict):
    role: OrgRoleName
    # A role a mapping gives is changed only as a pin, which mappings then leave alone.
    pin: bool = False


class MemberPublic(BaseModel):
    user_id: int
    email: str
    display_name: str
    role: str
    teams: dict[str, str]
    role_source: str
    role_detail: str | None
    role_pinned: bool
    role_origin: str = Field(description="Where the role comes from, in words.")
    active: bool
    sign_in: str = Field(description='How the person signs in here, in words: "SSO (Okta)", '
                         '"password", "SSO (Okta) and password".')  # fmt: skip
    sso_connections: list[str] = Field(
        description="The org's connections the account is linked through."
    )
    has_password: bool
    external_collaborator: bool
    scim_managed: bool = Field(description="Provisioned by the org's SCIM client.")


class TeamCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: Annotated[str | None, Field(max_length=120)] = None


class TeamMemberSet(Strict):
    role: TeamRoleName = "write"


class TeamMemberPublic(BaseModel):
    user_id: int
    email: str
    role: str


class TeamPublic(BaseModel):
    name: str
    display_name: str
    is_default: bool
    members: list[TeamMemberPublic]


class ResourceCreate(Strict):
    kind: ResourceKind
    name: Name
    visibility: Visibility = Visibility.PRIVATE
    team: Annotated[str | None, Field(max_length=64)] = None
    description: Annotated[str, Field(max_length=500)] = ""


class ResourceUpdate(Strict):
    visibility: Visibility | None = None
    team: Annotated[str | None, Field(max_length=64)] = None
    description: Annotated[str | None, Field(max_length=500)] = None


class ResourcePublic(BaseModel):
    kind: str
    name: str
    org: str
    visibility: str
    team: str | None
    description: str
    created_at: datetime


class TokenCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Annotated[str, Field(max_length=16)]], Field(min_length=1, max_length=4)]
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = None


class TokenPublic(BaseModel):
    id: int
    kind: str
    name: str
    hint: str
    scopes: list[str]
    team: str | None = None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret, shown this once.")


class DeploymentUsagePublic(BaseModel):
    """One deployment a token called, in UTC days up to and including ``day``."""

    org: str
    deployment: str
    calls_today: int
    calls_7_days: int
    calls_30_days: int


class TokenUsagePublic(BaseModel):
    """A token's calls to deployments through forward-auth, as last flushed
    (every ``HUBGATE_USAGE_FLUSH_SECONDS``, so up to that far behind)."""

    token_id: int
    day: date = Field(description="Today (UTC): the last day of each window.")
    last_used_at: datetime | None
    calls_today: int
    calls_7_days: int
    calls_30_days: int
    deployments: list[DeploymentUsagePublic] = Field(description="The busiest first.")


class AuditEventPublic(BaseModel):
    id: int
    at: str
    org_id: int | None
    actor: str
    actor_id: int | None
    action: str
    target: str
    reason: str | None
    trace_id: str
    client_address: str | None
    data: dict[str, Any]


class AuditPage(BaseModel):
    events: list[AuditEventPublic]
    next_before_id: int | None


class ErrorPublic(BaseModel):
    error: str
    message: str
    trace_id: str | None = None
