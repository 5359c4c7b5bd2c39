"""The operator's platform sign-in providers: an OpenID Provider by issuer (its
discovery document fetched before the storing transaction) or GitHub (github.com
or a GitHub Enterprise Server's base URL), the client secret sealed at rest;
listed on ``/login`` and ``/signup`` as "Continue with NAME"."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.audit import Actor
from hubgate.db.models import PlatformProvider
from hubgate.errors import BadRequest, NotFound
from hubgate.runtime import Runtime
from hubgate.sso import github
from hubgate.sso.oidc import settings as oidc_settings
from hubgate.sso.oidc.config import OidcConfig
from hubgate.sso.oidc.discovery import ProviderMetadata

__all__ = [
    "Button",
    "GithubConfig",
    "ProviderUnknown",
    "add_github",
    "add_oidc",
    "buttons",
    "describe",
    "get",
    "github_config",
    "listed",
    "oidc_config",
    "redirect_uri",
    "remove",
]

MAX_PROVIDERS = 20
_NAME = re.compile(r"[\w][\w .()+-]{0,59}")


class ProviderUnknown(NotFound):
    default_code = "provider_unknown"
    default_message = "There is no such sign-in provider."


@dataclass(frozen=True, slots=True)
class Button:
    """A "Continue with NAME" link on the sign-in and sign-up pages."""

    id: int
    name: str


def checked_name(value: str) -> str:
    name = value.strip()
    if not _NAME.fullmatch(name):
        raise BadRequest(
            "A provider's name is 1 to 60 letters, digits, spaces or . ( ) + -.",
            code="provider_name_invalid",
        )
    return name


def add_oidc(
    db: Session,
    rt: Runtime,
    actor: Actor,
    *,
    name: str,
    client_id: str,
    client_secret: str,
    provider: ProviderMetadata,
) -> PlatformProvider:
    """A provider from its discovery document, which the caller fetched
    (:func:`hubgate.sso.connections.discover`) before this transaction."""
    name = checked_name(name)
    provider_settings: dict[str, object] = {"provider": dataclasses.asdict(provider)}
    row = _store(db, rt, "oidc", name, client_id, client_secret, provider_settings)
    audit.record(
        db, actor, "provider.created", target=f"provider:{row.id}",
        data={"kind": "oidc", "name": name, "issuer": provider.issuer},
    )  # fmt: skip
    return row


def add_github(
    db: Session,
    rt: Runtime,
    actor: Actor,
    *,
    name: str,
    client_id: str,
    client_secret: str,
    base_url: str = github.GITHUB_COM,
) -> PlatformProvider:
    """GitHub, or a GitHub Enterprise Server at ``base_url``: its endpoints are
    GitHub's documented ones (no discovery)."""
    name = checked_name(name)
    base = github.checked_base_url(base_url)
    row = _store(db, rt, "github", name, client_id, client_secret, {"base_url": base})
    audit.record(
        db, actor, "provider.created", target=f"provider:{row.id}",
        data={"kind": "github", "name": name, "base_url": base},
    )  # fmt: skip
    return row


def _store(
    db: Session,
    rt: Runtime,
    kind: str,
    name: str,
    client_id: str,
    client_secret: str,
    settings: dict[str, object],
) -> PlatformProvider:
    client_id = oidc_settings.checked_client_id(client_id)
    if not oidc_settings.checked_client_secret(client_secret):
        raise BadRequest("A platform provider needs a client secret.", code="setting_invalid")
    if len(listed(db)) >= MAX_PROVIDERS:
        raise BadRequest(f"At most {MAX_PROVIDERS} providers.", code="too_many_providers")
    stored = {**settings, "client_id": client_id, "client_secret": rt.sealer.seal(client_secret)}
    row = PlatformProvider(kind=kind, name=name, settings=json.dumps(stored))
    db.add(row)
    db.flush()
    return row


def listed(db: Session) -> list[PlatformProvider]:
    return list(db.scalars(select(PlatformProvider).order_by(PlatformProvider.id)))


def buttons(db: Session) -> list[Button]:
    return [Button(row.id, row.name) for row in listed(db)]


def get(db: Session, provider_id: int) -> PlatformProvider:
    row = db.get(PlatformProvider, provider_id)
    if row is None:
        raise ProviderUnknown()
    return row


def remove(db: Session, actor: Actor, provider_id: int) -> None:
    """The provider and every link it made go; accounts stay (their other ways in)."""
    row = get(db, provider_id)
    db.delete(row)
    db.flush()
    audit.record(db, actor, "provider.removed", target=f"provider:{provider_id}")


def describe(row: PlatformProvider) -> dict[str, object]:
    """What the operator sees: never the client secret."""
    settings = json.loads(row.settings)
    where = settings["base_url"] if row.kind == "github" else settings["provider"]["issuer"]
    return {
        "id": row.id, "kind": row.kind, "name": row.name, "issuer": where,
        "client_id": settings["client_id"],
    }  # fmt: skip


def redirect_uri(rt: Runtime, provider_id: int) -> str:
    return rt.url(f"/sso/platform/{provider_id}/callback")


def oidc_config(rt: Runtime, row: PlatformProvider) -> OidcConfig:
    """The OIDC relying party's configuration; only ``email`` and
    ``email_verified`` are read from what the provider sends (no groups)."""
    settings = json.loads(row.settings)
    return OidcConfig(
        connection_id=row.id,
        provider=ProviderMetadata(**settings["provider"]),
        client_id=settings["client_id"],
        client_secret=rt.sealer.unseal(settings["client_secret"]),
        redirect_uri=redirect_uri(rt, row.id),
    )


@dataclass(frozen=True, slots=True)
class GithubConfig:
    provider_id: int
    endpoints: github.Endpoints
    client_id: str
    client_secret: str
    redirect_uri: str


def github_config(rt: Runtime, row: PlatformProvider) -> GithubConfig:
    settings = json.loads(row.settings)
    return GithubConfig(
        provider_id=row.id,
        endpoints=github.Endpoints.of(settings["base_url"]),
        client_id=settings["client_id"],
        client_secret=rt.sealer.unseal(settings["client_secret"]),
        redirect_uri=redirect_uri(rt, row.id),
    )
