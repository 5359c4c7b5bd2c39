"""SSO connections: created from IdP metadata or OIDC discovery, changed, marked
verified by a sign-in, read back, and turned into protocol settings.

How admins see one: :mod:`hubgate.sso.connection_summary`; its certificates and
SP key: :mod:`hubgate.sso.connection_certificates`; its activation:
:mod:`hubgate.sso.activation`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import Org, SamlMetadataSource, SsoConnection
from hubgate.errors import BadRequest, NotFound
from hubgate.names import is_slug
from hubgate.principals import OrgScope, require
from hubgate.runtime import Runtime
from hubgate.sso.fetch import fetch
from hubgate.sso.identity import Identity
from hubgate.sso.oidc import settings as oidc_settings
from hubgate.sso.oidc.config import OidcConfig, TokenAuth
from hubgate.sso.oidc.discovery import ProviderMetadata, discovery_url, parse_discovery
from hubgate.sso.oidc.errors import OidcError, SettingInvalid
from hubgate.sso.saml.config import IdpSingleLogout, SamlConfig
from hubgate.sso.saml.errors import SamlError
from hubgate.sso.saml.keys import certificate_fingerprint, new_key_pair
from hubgate.sso.saml.metadata import SingleLogoutService, parse_idp_metadata
from hubgate.sso.states import ConnectionKind, ConnectionState

__all__ = [
    "EDITABLE",
    "SLO_SETTINGS",
    "ConnectionRef",
    "Endpoint",
    "EndpointSource",
    "SingleLogout",
    "Through",
    "create_oidc",
    "create_saml",
    "discover",
    "discover_for",
    "named_org_endpoints",
    "oidc_endpoint",
    "org_endpoints",
    "saml_endpoint",
    "update_settings",
    "get",
    "identity_verified",
    "jwks_uri",
    "load_metadata",
    "load_metadata_for",
    "mark_verified",
    "of_org",
    "oidc_config",
    "update_oidc",
    "redirect_uri",
    "saml_config",
    "shown_oidc_settings",
    "single_logout",
    "slo_settings",
    "slo_url",
    "sp_urls",
    "stored_settings",
]


def load_metadata(rt: Runtime, source: str) -> bytes:
    """IdP metadata from a URL (bounded, SSRF-checked) or a local file (the CLI);
    before the transaction that stores the connection, never inside one."""
    if source.startswith(("http://", "https://")):
        return fetch(source, allow_private=rt.settings.allow_private_idp_urls)
    path = Path(source)
    if not path.is_file() or path.stat().st_size > 1024 * 1024:
        raise BadRequest("Give a metadata file of at most 1 MiB, or an http(s) URL.")
    return path.read_bytes()


def load_metadata_for(rt: Runtime, scope: OrgScope, source: str) -> bytes:
    """:func:`load_metadata` for whoever ``scope`` names, once a short transaction
    found them an admin of the org (:func:`create_saml` checks again as it stores)."""
    _check_admin(rt, scope)
    return load_metadata(rt, source)


def discover_for(rt: Runtime, scope: OrgScope, issuer: str) -> ProviderMetadata:
    """:func:`discover` for whoever ``scope`` names, once a short transaction found
    them an admin of the org (:func:`create_oidc` checks again as it stores)."""
    _check_admin(rt, scope)
    return discover(rt, issuer)


def _check_admin(rt: Runtime, scope: OrgScope) -> None:
    with rt.db.transaction() as db:
        org, principal = scope(db)
        require(principal, Action.ADMIN, OrgTarget(org.id))


def sp_urls(rt: Runtime, connection_id: int) -> tuple[str, str]:
    """The SP entity id (the metadata URL) and the ACS URL of a connection."""
    base = rt.url(f"/sso/saml/{connection_id}")
    return f"{base}/metadata", f"{base}/acs"


def slo_url(rt: Runtime, connection_id: int) -> str:
    """The SP's SingleLogoutService URL of a connection (HTTP-Redirect and HTTP-POST)."""
    return rt.url(f"/sso/saml/{connection_id}/slo")


def create_saml(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    metadata: bytes,
    *,
    allow_idp_initiated: bool = False,
    metadata_url: str | None = None,
) -> SsoConnection:
    """A SAML connection from the IdP's metadata; given ``metadata_url`` (where the
    caller fetched it), it is read again on a schedule
    (:mod:`hubgate.sso.metadata_refresh`)."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    try:
        idp = parse_idp_metadata(metadata)
    except SamlError as exc:
        raise BadRequest(exc.message, code="saml_metadata_invalid") from exc
    settings = {
        "idp_entity_id": idp.entity_id,
        "idp_sso_url": idp.sso_url,
        "idp_certificates": list(idp.certificates),
        "allow_idp_initiated": allow_idp_initiated,
        **slo_settings(idp.single_logout),
    }
    key, certificate = new_key_pair(f"hubgate {org.name}", rt.now())
    connection = SsoConnection(
        org_id=org.id, kind="saml", name=idp.entity_id[:120], settings=json.dumps(settings),
        sp_private_key=rt.sealer.seal(key), sp_certificate=certificate,
    )  # fmt: skip
    db.add(connection)
    db.flush()
    if metadata_url is not None:
        db.add(SamlMetadataSource(
            connection_id=connection.id, url=metadata_url,
            next_due_at=rt.now() + timedelta(hours=rt.settings.metadata_refresh_hours),
        ))  # fmt: skip
    audit.record(
        db, actor, "sso.connection_created", org_id=org.id, target=f"connection:{connection.id}",
        data={"kind": "saml", "idp": idp.entity_id},
    )  # fmt: skip
    return connection


SLO_SETTINGS = ("idp_slo_binding", "idp_slo_url", "idp_slo_response_url")


def slo_settings(service: SingleLogoutService | None) -> dict[str, str]:
    """How the IdP's SingleLogoutService is kept in a connection's settings (the
    keys of :data:`SLO_SETTINGS`, none without one)."""
    if service is None:
        return {}
    return {
        "idp_slo_binding": service.binding, "idp_slo_url": service.location,
        "idp_slo_response_url": service.response_location or service.location,
    }  # fmt: skip


def get(db: Session, connection_id: int, *, org_id: int | None = None) -> SsoConnection:
    """The connection; with ``org_id``, only one of that org's (others answer 404)."""
    found = db.get(SsoConnection, connection_id)
    if found is None or (org_id is not None and found.org_id != org_id):
        raise NotFound("No such SSO connection.")
    return found


class ConnectionRef(Protocol):
    """What a sign-in reads of its connection: the row itself, or an
    :class:`Endpoint`."""

    @property
    def id(self) -> int: ...
    @property
    def org_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...


class EndpointSource(ConnectionRef, Protocol):
    """What building a :class:`SamlConfig` or an :class:`OidcConfig` reads."""

    @property
    def settings(self) -> str: ...
    @property
    def sp_private_key(self) -> str: ...
    @property
    def sp_certificate(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Through:
    """The connection a sign-in came through, as it was then: it outlives the
    transaction (and the ORM row) it was read in."""

    id: int
    org_id: int
    kind: str
    state: str

    @classmethod
    def of(cls, connection: ConnectionRef) -> Through:
        return cls(connection.id, connection.org_id, connection.kind, connection.state)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A connection as a sign-in's endpoints read it (start, assertion consumer,
    redirect URI), in one Core query: loading the ORM row was a tenth of a SAML
    sign-in's CPU. ``name`` is what the page choosing among several active
    connections shows."""

    id: int
    org_id: int
    kind: str
    state: str
    settings: str
    sp_private_key: str
    sp_certificate: str
    name: str = ""


_T = SsoConnection.__table__
_ENDPOINTS = select(*(_T.c[f.name] for f in dataclasses.fields(Endpoint)))
_ENDPOINT = _ENDPOINTS.where(_T.c.id == bindparam("id"))
_ORG_ENDPOINTS = _ENDPOINTS.where(
    _T.c.org_id == bindparam("org_id"), _T.c.state != ConnectionState.INACTIVE.value
).order_by(_T.c.id)


def _endpoint(db: Session, connection_id: int, kind: str) -> Endpoint:
    row = db.connection().execute(_ENDPOINT, {"id": connection_id}).first()
    if row is None or row.kind != kind or row.state == ConnectionState.INACTIVE:
        raise NotFound(f"No such {kind.upper()} connection.")
    return Endpoint(*row)


def saml_endpoint(db: Session, connection_id: int) -> Endpoint:
    """The SAML connection an IdP posts to; an inactive one, or another kind, is 404."""
    return _endpoint(db, connection_id, ConnectionKind.SAML)


def oidc_endpoint(db: Session, connection_id: int) -> Endpoint:
    """The OIDC connection a provider redirects to; an inactive one, or another
    kind, is 404."""
    return _endpoint(db, connection_id, ConnectionKind.OIDC)


def org_endpoints(db: Session, org_id: int) -> list[Endpoint]:
    """The org's connections that are not inactive, oldest first."""
    return [Endpoint(*row) for row in db.connection().execute(_ORG_ENDPOINTS, {"org_id": org_id})]


_O = Org.__table__
_NAMED_ORG_ENDPOINTS = (
    select(_O.c.id.label("named_org_id"), *_ENDPOINTS.selected_columns)
    .select_from(
        _O.outerjoin(_T, and_(_T.c.org_id == _O.c.id, _T.c.state != ConnectionState.INACTIVE.value))
    )
    .where(_O.c.name == bindparam("name"))
    .order_by(_T.c.id)
)


def named_org_endpoints(db: Session, name: str) -> tuple[int, list[Endpoint]]:
    """The id of the org named ``name`` and :func:`org_endpoints` of it, in one Core
    query (``/sso/{org}/start`` reads nothing else of the org; the ORM row and a
    second query were a sixth of its work); an unknown name is 404."""
    rows = (
        db.connection().execute(_NAMED_ORG_ENDPOINTS, {"name": name}).all() if is_slug(name) else []
    )
    if not rows:
        raise NotFound("No organization by that name.")
    found = [Endpoint(*row[1:]) for row in rows if row.id is not None]
    return rows[0].named_org_id, found


def of_org(db: Session, org: Org) -> list[SsoConnection]:
    statement = select(SsoConnection).where(SsoConnection.org_id == org.id)
    return list(db.scalars(statement.order_by(SsoConnection.id)))


def mark_verified(connection: SsoConnection, rt: Runtime) -> None:
    """A test sign-in through the connection succeeded (draft -> verified)."""
    if connection.state == ConnectionState.DRAFT:
        connection.state = ConnectionState.VERIFIED.value
        connection.verified_at = rt.now()


def stored_settings(connection: EndpointSource | SsoConnection) -> dict[str, Any]:
    """The connection's settings as stored (JSON; secrets sealed)."""
    loaded: dict[str, Any] = json.loads(connection.settings)
    return loaded


def saml_config(rt: Runtime, connection: EndpointSource) -> SamlConfig:
    settings = stored_settings(connection)
    entity_id, acs_url = sp_urls(rt, connection.id)
    return SamlConfig(
        connection_id=connection.id,
        idp_entity_id=settings["idp_entity_id"],
        idp_sso_url=settings["idp_sso_url"],
        idp_certificates=tuple(settings["idp_certificates"]),
        sp_entity_id=entity_id,
        acs_url=acs_url,
        sp_private_key=rt.sealer.unseal(connection.sp_private_key),
        sp_certificate=connection.sp_certificate,
        want_assertions_signed=settings.get("want_assertions_signed", True),
        want_encrypted_assertions=settings.get("want_encrypted_assertions", False),
        sign_authn_requests=settings.get("sign_authn_requests", False),
        allow_idp_initiated=settings.get("allow_idp_initiated", False),
        clock_skew=timedelta(seconds=settings.get("clock_skew_seconds", 120)),
        slo_url=slo_url(rt, connection.id),
        idp_slo=_idp_single_logout(settings),
    )


def _idp_single_logout(settings: dict[str, Any]) -> IdpSingleLogout | None:
    """The IdP's SingleLogoutService, unless it has none or the admin turned
    single logout off (it is on by default when the IdP's metadata has one)."""
    if not settings.get("single_logout", True) or not settings.get("idp_slo_url"):
        return None
    return IdpSingleLogout(
        settings["idp_slo_binding"], settings["idp_slo_url"], settings["idp_slo_response_url"]
    )


@dataclass(frozen=True, slots=True)
class SingleLogout:
    """A SAML connection's single logout as its admins see it: whether it is on,
    the SP's SingleLogoutService URL to give the IdP, and the IdP's own (from its
    metadata; ``None`` when it has none)."""

    active: bool
    sp_slo_url: str
    idp_slo_url: str | None


def single_logout(rt: Runtime, connection: EndpointSource | SsoConnection) -> SingleLogout:
    """:class:`SingleLogout` of a SAML connection, for the pages and the setup portal."""
    settings = stored_settings(connection)
    active = _idp_single_logout(settings) is not None
    return SingleLogout(active, slo_url(rt, connection.id), settings.get("idp_slo_url"))


EDITABLE = {
    "want_assertions_signed": bool,
    "want_encrypted_assertions": bool,
    "sign_authn_requests": bool,
    "allow_idp_initiated": bool,
    "single_logout": bool,
    "clock_skew_seconds": int,
    "email_attributes": list,
    "name_attributes": list,
    "groups_attributes": list,
}


def update_settings(
    db: Session,
    actor: Actor,
    principal: Principal,
    connection: SsoConnection,
    changes: dict[str, Any],
) -> None:
    """Change flags and attribute names; every change is audited."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    settings = stored_settings(connection)
    for name, value in changes.items():
        if name not in EDITABLE or not isinstance(value, EDITABLE[name]):
            raise BadRequest(f"'{name}' cannot be set to that.", code="invalid_setting")
        settings[name] = value
    connection.settings = json.dumps(settings)
    audit.record(
        db, actor, "sso.settings_changed", org_id=connection.org_id,
        target=f"connection:{connection.id}", data=changes,
    )  # fmt: skip


def identity_verified(
    db: Session, rt: Runtime, actor: Actor, connection: ConnectionRef, identity: Identity
) -> None:
    """A sign-in through ``connection`` verified: mark it (draft -> verified; the
    row in the session, if loaded, follows), and audit what arrived."""
    if connection.state == ConnectionState.DRAFT:
        db.execute(
            update(SsoConnection)
            .where(SsoConnection.id == connection.id, SsoConnection.state == ConnectionState.DRAFT)
            .values(state=ConnectionState.VERIFIED.value, verified_at=rt.now())
        )
    groups = list(identity.groups)
    summary: dict[str, object] = {
        "subject": identity.subject, "email": identity.email, "groups": groups
    }  # fmt: skip
    if identity.signing_certificate is not None:
        summary["certificate"] = certificate_fingerprint(identity.signing_certificate)
    audit.record(
        db, actor, "sso.identity_verified", org_id=connection.org_id,
        target=f"connection:{connection.id}", data=summary,
    )  # fmt: skip


def discover(rt: Runtime, issuer: str) -> ProviderMetadata:
    """The provider's discovery document, fetched now (bounded, SSRF-checked); its
    ``issuer`` must equal the configured one exactly. Call it before the transaction
    that stores the connection, never inside one."""
    issuer = oidc_settings.checked_issuer(issuer)
    document = fetch(discovery_url(issuer), allow_private=rt.settings.allow_private_idp_urls)
    try:
        return parse_discovery(document, issuer)
    except OidcError as exc:
        raise BadRequest(exc.message, code=exc.code) from exc


def create_oidc(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    provider: ProviderMetadata,
    token_auth: TokenAuth = TokenAuth.CLIENT_SECRET_BASIC,
) -> SsoConnection:
    """An OIDC connection from the provider's discovery document, which the caller
    fetched (:func:`discover`) before this transaction."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    client_id = oidc_settings.checked_client_id(client_id)
    client_secret = oidc_settings.checked_client_secret(client_secret)
    _require_secret(token_auth, client_secret)
    if provider.issuer != issuer:
        raise SettingInvalid("The discovered provider is not this issuer's.", setting="issuer")
    key, certificate = new_key_pair(f"hubgate {org.name}", rt.now())
    settings = {
        "provider": dataclasses.asdict(provider), "client_id": client_id,
        "client_secret": rt.sealer.seal(client_secret), "token_auth": token_auth.value,
    }  # fmt: skip
    connection = SsoConnection(
        org_id=org.id, kind="oidc", name=provider.issuer[:120], settings=json.dumps(settings),
        sp_private_key=rt.sealer.seal(key), sp_certificate=certificate,
    )  # fmt: skip
    db.add(connection)
    db.flush()
    audit.record(
        db, actor, "sso.connection_created", org_id=org.id, target=f"connection:{connection.id}",
        data={"kind": "oidc", "issuer": provider.issuer, "token_auth": token_auth.value},
    )  # fmt: skip
    return connection


def _require_secret(token_auth: TokenAuth, client_secret: str) -> None:
    if token_auth in oidc_settings.SECRET_METHODS and not client_secret:
        raise SettingInvalid(f"{token_auth.value} needs a client secret.", setting="client_secret")


def update_oidc(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    connection: SsoConnection,
    changes: dict[str, Any],
) -> None:
    """Change an OIDC connection's client, scopes, claim names or algorithms; all
    are checked before any is stored, the secret is sealed, the change audited
    (the secret only as replaced)."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    if connection.kind != "oidc":
        raise SettingInvalid("These settings are for OIDC connections.")
    checked = oidc_settings.checked_changes(changes)
    settings = stored_settings(connection)
    secret = checked.pop("client_secret", None)
    token_auth = TokenAuth(checked.get("token_auth", settings["token_auth"]))
    current = secret if secret is not None else rt.sealer.unseal(settings["client_secret"])
    _require_secret(token_auth, current)
    settings.update(checked)
    if secret is not None:
        settings["client_secret"] = rt.sealer.seal(secret)
        checked["client_secret"] = "replaced"
    connection.settings = json.dumps(settings)
    audit.record(
        db, actor, "sso.settings_changed", org_id=connection.org_id,
        target=f"connection:{connection.id}", data=checked,
    )  # fmt: skip


def redirect_uri(rt: Runtime, connection_id: int) -> str:
    return rt.url(f"/sso/oidc/{connection_id}/callback")


def jwks_uri(rt: Runtime, connection_id: int) -> str:
    """Where the provider fetches the key of a private_key_jwt client."""
    return rt.url(f"/sso/oidc/{connection_id}/jwks")


_OIDC_DEFAULTS = {field.name: field.default for field in dataclasses.fields(OidcConfig)}


def _oidc_setting(settings: dict[str, Any], name: str) -> Any:
    """A stored setting, else OidcConfig's default (Okta, Entra ID, Google, Keycloak)."""
    return settings.get(name, _OIDC_DEFAULTS[name])


def shown_oidc_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What describe shows and oidc_config uses, without the client."""
    shown = {name: _oidc_setting(settings, name) for name in oidc_settings.CLAIM_SETTINGS}
    shown["scopes"] = list(_oidc_setting(settings, "scopes"))
    shown["algorithms"] = sorted(_oidc_setting(settings, "algorithms"))
    shown["rp_logout"] = _oidc_setting(settings, "rp_logout")
    return shown


def oidc_config(rt: Runtime, connection: EndpointSource) -> OidcConfig:
    """The connection's settings, parsed and its secrets opened; each start and
    callback needs them, so the last few are kept per process (a stored value
    never changes meaning: a changed connection has other strings)."""
    key = (id(rt), rt.settings.base_url, connection.id, connection.settings,
           connection.sp_private_key)  # fmt: skip
    with _OIDC_CONFIGS_LOCK:
        found = _OIDC_CONFIGS.get(key)
    if found is None:
        found = _oidc_config(rt, connection)
        with _OIDC_CONFIGS_LOCK:
            _OIDC_CONFIGS[key] = found
            while len(_OIDC_CONFIGS) > _KEPT_CONFIGS:
                del _OIDC_CONFIGS[next(iter(_OIDC_CONFIGS))]
    return found


_KEPT_CONFIGS = 64
_OIDC_CONFIGS: dict[tuple[int, str, int, str, str], OidcConfig] = {}
_OIDC_CONFIGS_LOCK = threading.Lock()


def _oidc_config(rt: Runtime, connection: EndpointSource) -> OidcConfig:
    settings = stored_settings(connection)
    shown = shown_oidc_settings(settings)
    return OidcConfig(
        connection_id=connection.id,
        provider=ProviderMetadata(**settings["provider"]),
        client_id=settings["client_id"],
        client_secret=rt.sealer.unseal(settings["client_secret"]),
        redirect_uri=redirect_uri(rt, connection.id),
        token_auth=TokenAuth(settings["token_auth"]),
        private_key_pem=rt.sealer.unseal(connection.sp_private_key),
        scopes=tuple(shown["scopes"]),
        algorithms=frozenset(shown["algorithms"]),
        rp_logout=shown["rp_logout"],
        **{name: shown[name] for name in oidc_settings.CLAIM_SETTINGS},
    )
