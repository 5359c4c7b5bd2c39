"""The dev IdP's directory: test users, the SAML SPs and OIDC clients it serves.

Read from a TOML (``tomllib``) or JSON file, checked strictly, bounded in size;
a bad file is refused with a sentence that names the field. The shipped
default is ``users.toml`` next to this module. Layout::

    loopback_sps = true            # any SAML SP whose entity id and ACS are loopback URLs

    [[users]]
    id = "u-alice"                 # stable: the SAML persistent NameID and the OIDC sub
    email = "alice@acme.test"
    name = "Alice Admin"
    password = "..."               # plain text: test users only
    groups = ["hub-admins"]
    email_verified = true          # OIDC's claim (default true)

    [[saml_sps]]
    entity_id = "http://127.0.0.1:8000/sso/saml/1/metadata"
    acs_url = "http://127.0.0.1:8000/sso/saml/1/acs"

    [[oidc_clients]]
    client_id = "hubgate"
    client_secret = "..."
    redirect_uris = ["http://127.0.0.1:8000/sso/oidc/2/callback"]
    loopback_redirects = false     # true: any http://127.0.0.1|[::1]|localhost redirect
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_USERS",
    "Directory",
    "DirectoryInvalid",
    "OidcClient",
    "SamlSp",
    "User",
    "is_loopback_url",
    "load",
    "parse",
    "to_document",
]

MAX_FILE_BYTES = 1024 * 1024
MAX_ENTRIES = 1000
MAX_GROUPS = 100
MAX_TEXT = 256
MAX_URL = 2048
_ID = re.compile(r"[A-Za-z0-9._~@+-]{1,128}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}")
_LOOPBACK_NAMES = frozenset({"localhost"})
T = TypeVar("T")


def _default_users() -> Path:
    return Path(str(resources.files("hubgate.devidp").joinpath("users.toml")))


DEFAULT_USERS = _default_users()


class DirectoryInvalid(ValueError):
    """The users file cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    password: str
    groups: tuple[str, ...] = ()
    email_verified: bool = True


@dataclass(frozen=True, slots=True)
class SamlSp:
    entity_id: str
    acs_url: str


@dataclass(frozen=True, slots=True)
class OidcClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    loopback_redirects: bool = False

    def allows(self, redirect_uri: str) -> bool:
        """Exact match with a registered URI, or any loopback one when allowed."""
        if redirect_uri in self.redirect_uris:
            return True
        return self.loopback_redirects and is_loopback_url(redirect_uri)


@dataclass(frozen=True, slots=True)
class Directory:
    users: tuple[User, ...]
    saml_sps: tuple[SamlSp, ...] = ()
    oidc_clients: tuple[OidcClient, ...] = ()
    loopback_sps: bool = False

    def user(self, login: str) -> User | None:
        """By email (case-insensitive) or by id."""
        wanted = login.strip().lower()
        return next((u for u in self.users if wanted in (u.email.lower(), u.id.lower())), None)

    def by_id(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def saml_sp(self, entity_id: str) -> SamlSp | None:
        return next((s for s in self.saml_sps if s.entity_id == entity_id), None)

    def client(self, client_id: str) -> OidcClient | None:
        return next((c for c in self.oidc_clients if c.client_id == client_id), None)


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is a loopback address or ``localhost``."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host or len(url) > MAX_URL:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- reading ----------------------------------------------------------------------


def load(path: Path) -> Directory:
    """The directory in ``path`` (``.json``, else TOML)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DirectoryInvalid(f"{path} is larger than {MAX_FILE_BYTES} bytes.")
        raw = path.read_bytes()
    except OSError as exc:
        raise DirectoryInvalid(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        document = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise DirectoryInvalid(f"{path} is not valid {kind}: {exc}") from exc
    return parse(document)


def parse(document: Any) -> Directory:
    if not isinstance(document, dict):
        raise DirectoryInvalid("The users file must hold a table (object) at the top.")
    unknown = set(document) - {"users", "saml_sps", "oidc_clients", "loopback_sps"}
    if unknown:
        raise DirectoryInvalid(f"Unknown top-level key {sorted(unknown)[0]!r}.")
    directory = Directory(
        users=_entries(document, "users", _user),
        saml_sps=_entries(document, "saml_sps", _saml_sp),
        oidc_clients=_entries(document, "oidc_clients", _client),
        loopback_sps=_flag(document, "loopback_sps", False),
    )
    _unique(directory)
    return directory


def _entries(
    document: Mapping[str, Any], key: str, read: Callable[[Mapping[str, Any]], T]
) -> tuple[T, ...]:
    items = document.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise DirectoryInvalid(f"'{key}' must be a list of at most {MAX_ENTRIES} tables.")
    if key == "users" and not items:
        raise DirectoryInvalid("The users file lists no users.")
    found: list[T] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DirectoryInvalid(f"{key}[{index}] must be a table.")
        try:
            found.append(read(item))
        except DirectoryInvalid as exc:
            raise DirectoryInvalid(f"{key}[{index}]: {exc}") from exc
    return tuple(found)


def _user(item: Mapping[str, Any]) -> User:
    _known(item, {"id", "email", "name", "password", "groups", "email_verified"})
    email = _text(item, "email")
    if not _EMAIL.fullmatch(email):
        raise DirectoryInvalid(f"'email' {email[:64]!r} is not an email address.")
    groups = item.get("groups", [])
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise DirectoryInvalid(f"'groups' must be a list of at most {MAX_GROUPS} names.")
    return User(
        id=_identifier(item, "id"),
        email=email,
        name=_text(item, "name"),
        password=_text(item, "password"),
        groups=tuple(_text({"group": g}, "group") for g in groups),
        email_verified=_flag(item, "email_verified", True),
    )


def _saml_sp(item: Mapping[str, Any]) -> SamlSp:
    _known(item, {"entity_id", "acs_url"})
    return SamlSp(entity_id=_text(item, "entity_id", MAX_URL), acs_url=_url(item, "acs_url"))


def _client(item: Mapping[str, Any]) -> OidcClient:
    _known(item, {"client_id", "client_secret", "redirect_uris", "loopback_redirects"})
    uris = item.get("redirect_uris", [])
    if not isinstance(uris, list) or len(uris) > MAX_ENTRIES:
        raise DirectoryInvalid("'redirect_uris' must be a list of URLs.")
    return OidcClient(
        client_id=_identifier(item, "client_id"),
        client_secret=_text(item, "client_secret"),
        redirect_uris=tuple(_url({"redirect_uri": u}, "redirect_uri") for u in uris),
        loopback_redirects=_flag(item, "loopback_redirects", False),
    )


def _known(item: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(item) - allowed
    if unknown:
        raise DirectoryInvalid(f"unknown key {sorted(unknown)[0]!r}.")


def _text(item: Mapping[str, Any], key: str, limit: int = MAX_TEXT) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise DirectoryInvalid(f"'{key}' must be a text of 1 to {limit} characters.")
    if not value.isprintable():
        raise DirectoryInvalid(f"'{key}' holds control characters.")
    return value


def _identifier(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise DirectoryInvalid(f"'{key}' must be 1 to 128 letters, digits or ._~@+-.")
    return value


def _url(item: Mapping[str, Any], key: str) -> str:
    value = _text(item, key, MAX_URL)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise DirectoryInvalid(f"'{key}' must be an http(s) URL without a fragment.")
    return value


def _flag(item: Mapping[str, Any], key: str, default: bool) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise DirectoryInvalid(f"'{key}' must be true or false.")
    return value


def _unique(directory: Directory) -> None:
    for label, values in (
        ("user id", [u.id for u in directory.users]),
        ("user email", [u.email.lower() for u in directory.users]),
        ("SAML SP entity_id", [s.entity_id for s in directory.saml_sps]),
        ("OIDC client_id", [c.client_id for c in directory.oidc_clients]),
    ):
        if len(set(values)) != len(values):
            raise DirectoryInvalid(f"Two entries share one {label}.")


# -- writing (hubgate demo writes its directory as JSON) -----------------------------


def to_document(directory: Directory) -> dict[str, Any]:
    """The JSON-ready form :func:`parse` reads back."""
    return {
        "loopback_sps": directory.loopback_sps,
        "users": [
            {
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "password": u.password,
                "groups": list(u.groups),
                "email_verified": u.email_verified,
            }
            for u in directory.users
        ],  # fmt: skip
        "saml_sps": [{"entity_id": s.entity_id, "acs_url": s.acs_url} for s in directory.saml_sps],
        "oidc_clients": [
            {
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": list(c.redirect_uris),
                "loopback_redirects": c.loopback_redirects,
            }
            for c in directory.oidc_clients
        ],  # fmt: skip
    }
