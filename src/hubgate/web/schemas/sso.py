"""Response documents of an org's SSO in the JSON API: connections, the policy and
its mappings, invitations, the join link and setup links.

Each is validated from what the service describes (``connections.describe``,
``policy.describe``, ...), so the JSON keeps the service's keys and values."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from hubgate.sso.oidc.config import TokenAuth
from hubgate.sso.setup import SetupLinkEnd
from hubgate.sso.states import ConnectionKind, ConnectionState, SsoModeName
from hubgate.web.schemas import IsoInstant


class SamlSettingsPublic(TypedDict, total=False):
    """The SAML flags and attribute names an admin may change; a connection
    shows those it stores."""

    want_assertions_signed: bool
    want_encrypted_assertions: bool
    sign_authn_requests: bool
    allow_idp_initiated: bool
    single_logout: bool
    clock_skew_seconds: int
    email_attributes: list[str]
    name_attributes: list[str]
    groups_attributes: list[str]


class SamlLogoutPublic(BaseModel):
    """SAML Single Logout: whether it runs (the IdP's metadata names a
    SingleLogoutService and ``single_logout`` is on), the SP's SLO URL to give the
    IdP, and the IdP's own."""

    active: bool
    sp_slo_url: str
    idp_slo_url: str | None


class OidcLogoutPublic(BaseModel):
    """OpenID Connect logout: whether sign-out goes on to the provider's
    end_session_endpoint, and the two URIs to register at the provider."""

    rp_logout_active: bool
    backchannel_logout_uri: str
    post_logout_redirect_uri: str


class CertificatePublic(BaseModel):
    """A certificate of a connection and its expiry: an IdP signing certificate
    (any listed one verifies, so a new one can be added before the old expires)
    or hubgate's own SP certificate."""

    use: Literal["idp_signing", "sp"]
    fingerprint_sha256: str = Field(description="SHA-256 of the DER certificate, hex.")
    not_after: IsoInstant
    days_left: int = Field(description="Whole days until not_after; negative once past.")
    expiry: str = Field(description='For people: "in 12 days", "expired 3 days ago".')
    expired: bool


CertificateAlarm = Literal["30_days", "7_days", "expired"]


class SamlConnectionPublic(BaseModel):
    """A SAML connection: what the IdP is told (SP values) and what it told us."""

    id: int
    kind: Literal[ConnectionKind.SAML]
    state: ConnectionState
    name: str
    sp_entity_id: str
    acs_url: str
    sp_metadata_url: str
    sp_certificate_expires: IsoInstant | None
    idp_entity_id: str | None
    idp_sso_url: str | None
    idp_certificates_expire: list[IsoInstant | None]
    certificates: list[CertificatePublic]
    certificate_alarm: CertificateAlarm | None = Field(
        description="Set while the connection is active and its last valid IdP signing "
        "certificate expires within 30 or 7 days, or has expired."
    )
    settings: SamlSettingsPublic
    logout: SamlLogoutPublic


class OidcSettingsPublic(BaseModel):
    email_claim: str
    email_verified_claim: str
    name_claim: str
    groups_claim: str
    scopes: list[str]
    algorithms: list[str]
    rp_logout: bool


class OidcConnectionPublic(BaseModel):
    """An OIDC connection: the redirect URI to register, the provider and client
    (never the client secret), and the claim settings."""

    id: int
    kind: Literal[ConnectionKind.OIDC]
    state: ConnectionState
    name: str
    redirect_uri: str
    jwks_uri: str
    issuer: str
    client_id: str
    token_auth: TokenAuth
    settings: OidcSettingsPublic
    logout: OidcLogoutPublic


ConnectionPublic = Annotated[
    SamlConnectionPublic | OidcConnectionPublic, Field(discriminator="kind")
]


class ConnectionDeleted(BaseModel):
    """A deleted connection and how many SSO links went with it."""

    id: int
    links_removed: int


class SsoPolicyPublic(BaseModel):
    mode: SsoModeName
    enforced: bool
    session_timeout_seconds: int
    default_role: str
    default_team: str | None


class RoleMappingPublic(BaseModel):
    attribute: str
    value: str
    role: str


class TeamMappingPublic(BaseModel):
    attribute: str
    value: str
    team: str
    team_role: str


class MappingsPublic(BaseModel):
    role_mappings: list[RoleMappingPublic]
    team_mappings: list[TeamMappingPublic]


class SsoSettingsPublic(SsoPolicyPublic):
    """The policy with its role and team mappings."""

    role_mappings: list[RoleMappingPublic]
    team_mappings: list[TeamMappingPublic]


class PinnedMemberPublic(BaseModel):
    email: str
    role: str


class MappingPreviewPublic(BaseModel):
    """What the mappings would give: the role and the rule that gives it, the
    teams (name: role), and the members whose pinned role they leave alone."""

    role: str | None
    teams: dict[str, str]
    role_rule: str | None
    pinned: list[PinnedMemberPublic]


class InvitationPublic(BaseModel):
    email: str
    role: str
    teams: list[tuple[str, str]] = Field(description="[team, team role] pairs.")
    invited_by: str
    expires_at: IsoInstant
    url: str | None = Field(
        description="The link to pass on to the invitee (it only starts the org's SSO; "
        "the invitation is accepted by signing in with the invited address)."
    )
    mailed_at: IsoInstant | None


class JoinLinkPublic(BaseModel):
    """The org's join link; admins can see it again until it is rotated or disabled."""

    state: Literal["none", "live", "expired", "hidden"] = Field(
        description="hidden: the link works but was made before hubgate kept links "
        "(or its key cannot be opened); rotate it to see a new one."
    )
    join_url: str | None
    expires_at: IsoInstant | None
    rotated_at: IsoInstant | None


class CollaboratorPublic(BaseModel):
    email: str
    external_collaborator: bool


class SetupLinkPublic(BaseModel):
    id: int
    email: str
    created_by: str
    created_at: IsoInstant
    expires_at: IsoInstant
    ended: SetupLinkEnd | None


class SetupLinkCreated(SetupLinkPublic):
    url: str = Field(description="The link, shown this once.")
