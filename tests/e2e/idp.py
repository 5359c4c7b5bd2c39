"""A real SAML 2.0 IdP for end-to-end tests: Debian's SimpleSAMLphp 1.19 under
``php -S``, plus a small HTTP-only "browser" to drive sign-ins through it.

- :func:`running_idp` starts the IdP on a free loopback port with a config dir
  made from ``tests/e2e/simplesamlphp/`` and fresh signing key pairs, and
  yields an :class:`IdpInfo`; :meth:`IdpInfo.register_sp`,
  :meth:`IdpInfo.register_sp_metadata`, :meth:`IdpInfo.use_signing_cert`,
  :meth:`IdpInfo.announce_signing_cert`,
  :meth:`IdpInfo.set_user` and :meth:`IdpInfo.remove_user` change the running
  IdP (PHP reads its configuration on every request, so no restart is needed);
- :class:`Browser` follows redirects by hand with one cookie jar, reads HTML
  forms, signs in at the IdP's login form and finds the auto-submit form that
  carries a ``SAMLResponse``.

How the config dir reaches SimpleSAMLphp: Debian's package links
``/usr/share/simplesamlphp/config`` to ``/etc/simplesamlphp``, but
``SimpleSAML\\Utils\\Config::getConfigDir()`` prefers the environment variable
``SIMPLESAMLPHP_CONFIG_DIR``, and PHP's built-in server hands its own
environment to ``getenv()``, so setting it on the ``php -S`` process is enough:
nothing under /etc is read or changed. ``baseurlpath`` is a whole URL, since
behind ``php -S`` nothing else tells SimpleSAMLphp its address.

The IdP's users live in the same JSON state file (``authsources.php`` reads them
from it); every IdP starts with :data:`USERS` and a test changes them with
:meth:`IdpInfo.set_user` and :meth:`IdpInfo.remove_user`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin

import httpx

from hubgate.sso.saml.keys import new_key_pair
from tests.e2e.conftest import HOST, _process, _tail, _wait_until, free_port

__all__ = [
    "SIMPLESAMLPHP_WWW",
    "USERS",
    "Browser",
    "HtmlForm",
    "IdpInfo",
    "IdpUser",
    "generate_key_pair",
    "parse_forms",
    "running_idp",
    "simplesamlphp_missing",
]

TEMPLATES = Path(__file__).resolve().parent / "simplesamlphp"
SIMPLESAMLPHP_WWW = Path("/usr/share/simplesamlphp/www")
STATE_FILE = "hubgate-e2e.json"
MAX_REDIRECTS = 10
T = TypeVar("T")


@dataclass(frozen=True)
class IdpUser:
    """One user of the IdP's ``example-userpass`` source (authsources.php).

    The IdP asserts ``uid`` (which is also the persistent NameID, so hubgate's
    subject), ``email``, ``displayName`` and ``groups``: the names hubgate maps
    by default (``hubgate.sso.saml.config.DEFAULT_ATTRIBUTES``). ``email`` or
    ``display_name`` ``None`` leaves that attribute out; so does an empty
    ``groups``. ``attributes`` are raw SAML attributes added to those, or
    replacing one of the same name (an empty tuple leaves it out).
    """

    username: str
    password: str
    email: str | None
    display_name: str | None
    groups: tuple[str, ...]
    uid: str = ""  # the NameID; "" means the username
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """The NameID value: what hubgate records as the Identity's subject."""
        return self.uid or self.username

    def saml_attributes(self) -> dict[str, list[str]]:
        """The attributes the IdP asserts for this user, by name."""
        standard = {
            "uid": [self.subject],
            "email": [self.email] if self.email is not None else [],
            "displayName": [self.display_name] if self.display_name is not None else [],
            "groups": list(self.groups),
        }
        merged = {**standard, **{name: list(values) for name, values in self.attributes.items()}}
        return {name: values for name, values in merged.items() if values}

    def state(self) -> dict[str, object]:
        """This user as authsources.php reads it from the state file."""
        return {
            "username": self.username,
            "password": self.password,
            "attributes": self.saml_attributes(),
        }


USERS = {
    "alice": IdpUser(
        "alice", "alicepass", "alice@acme.test", "Alice Admin", ("hubgate-admins", "research")
    ),
    "bob": IdpUser("bob", "bobpass", "bob@acme.test", "Bob Builder", ("research",)),
}


def php_binary() -> str | None:
    return shutil.which("php")


def simplesamlphp_missing() -> str | None:
    """Why the IdP cannot run here, or ``None`` when it can."""
    if php_binary() is None:
        return "php is not installed (scripts/install-system-deps.sh installs php-cli)"
    if not (SIMPLESAMLPHP_WWW / "index.php").is_file():
        return (
            f"SimpleSAMLphp is not installed at {SIMPLESAMLPHP_WWW} "
            "(scripts/install-system-deps.sh installs Debian's simplesamlphp)"
        )
    return None


def generate_key_pair(common_name: str) -> tuple[str, str]:
    """A fresh RSA-2048 private key and a self-signed certificate for it, both PEM."""
    return new_key_pair(common_name, dt.datetime.now(dt.UTC), years=1)


# -- the IdP -----------------------------------------------------------------------


@dataclass
class IdpInfo:
    """A running SimpleSAMLphp IdP.

    ``certificates_pem`` are all the signing certificates generated for it (index
    0 first); ``certificate_files`` the same as files, for ``add-cert``. It signs
    with ``certificates_pem[signing_cert_index]``. ``users`` are its users now
    (:data:`USERS` at first), by username.
    """

    base_url: str
    metadata_url: str
    entity_id: str
    sso_url: str
    certificates_pem: tuple[str, ...]
    certificate_files: tuple[Path, ...]
    signing_cert_index: int
    config_dir: Path
    log_file: Path
    sessions_dir: Path
    users: dict[str, IdpUser] = field(default_factory=lambda: dict(USERS))
    _state: dict[str, object] = field(repr=False, default_factory=dict)

    def set_user(
        self,
        username: str,
        *,
        password: str | None = None,
        email: str | None = None,
        name: str | None = None,
        groups: Iterable[str] | None = None,
        uid: str | None = None,
        attributes: Mapping[str, Iterable[str]] | None = None,
    ) -> IdpUser:
        """Add user ``username`` or change it (from the next sign-in on): what is not
        given stays as it was; a new user starts as ``{username}pass``,
        ``{username}@acme.test``, the capitalized username as name, no groups,
        NameID the username. ``email`` may be any address (another org's domain, too); to
        assert none, pass ``attributes={"email": []}``.

        The IdP keeps the attributes of a session it already holds: sign in from
        a fresh :class:`Browser`, or call :meth:`end_sessions` first.
        """
        if not username or ":" in username:
            raise ValueError(f"{username!r}: a username is not empty and has no ':'")
        now = self.users.get(username) or IdpUser(
            username, f"{username}pass", f"{username}@acme.test", username.capitalize(), ()
        )
        user = replace(
            now,
            password=_given(password, now.password),
            email=_given(email, now.email),
            display_name=_given(name, now.display_name),
            groups=now.groups if groups is None else tuple(groups),
            uid=_given(uid, now.uid),
            attributes=now.attributes if attributes is None else _raw(attributes),
        )
        self.users[username] = user
        self._write()
        return user

    def remove_user(self, username: str) -> None:
        """Delete the user: its next login at the IdP's form fails. A browser that
        still holds an IdP session for it keeps signing in until :meth:`end_sessions`."""
        del self.users[username]
        self._write()

    def end_sessions(self) -> None:
        """Forget every IdP session, so each browser meets the login form again."""
        for session in self.sessions_dir.iterdir():
            session.unlink()

    def register_sp(
        self,
        entity_id: str,
        acs_url: str,
        *,
        slo_url: str | None = None,
        certificate_pem: str | None = None,
    ) -> None:
        """Trust one more service provider (takes effect on the next request); with
        ``slo_url`` and ``certificate_pem``, it takes part in single logout."""
        sps = self._sps()
        sps[:] = [sp for sp in sps if sp["entity_id"] != entity_id]
        sp = {"entity_id": entity_id, "acs_url": acs_url}
        if slo_url is not None:
            sp["slo_url"] = slo_url
        if certificate_pem is not None:
            sp["certificate"] = "".join(
                line for line in certificate_pem.strip().splitlines() if "-----" not in line
            )
        sps.append(sp)
        self._write()

    def register_sp_metadata(self, xml: str) -> None:
        """Trust the SP(s) that a metadata document describes, read by SimpleSAMLphp's
        own metadata parser (AuthnRequestsSigned, NameIDFormat, ACS, keys)."""
        documents = self._state.setdefault("sp_xml", [])
        assert isinstance(documents, list)
        documents.append(xml)
        self._write()

    def use_signing_cert(self, index: int) -> None:
        """Sign from now on with key pair ``index`` (the IdP's metadata follows)."""
        if not 0 <= index < len(self.certificates_pem):
            raise IndexError(f"the IdP has {len(self.certificates_pem)} key pairs")
        self.signing_cert_index = index
        self._state["idp"] = _signing(self.entity_id, index)
        self._write()

    def announce_signing_cert(self, index: int) -> None:
        """Publish key pair ``index``'s certificate in the metadata beside the one it
        signs with (SimpleSAMLphp's ``new_certificate``): the first step of a
        rollover; :meth:`use_signing_cert` then switches and drops the announcement."""
        if not 0 <= index < len(self.certificates_pem):
            raise IndexError(f"the IdP has {len(self.certificates_pem)} key pairs")
        self._state["idp"] = {
            **_signing(self.entity_id, self.signing_cert_index),
            "new_certificate": f"idp-{index}.crt",
        }
        self._write()

    def metadata_xml(self) -> str:
        response = httpx.get(self.metadata_url, timeout=10.0)
        response.raise_for_status()
        return response.text

    @property
    def slo_url(self) -> str:
        """The IdP's SingleLogoutService (its metadata names it)."""
        return f"{self.base_url}/saml2/idp/SingleLogoutService.php"

    def logout_url(self, return_to: str) -> str:
        """Where a browser starts an IdP-initiated logout of every SP it signed in
        to, coming back to ``return_to`` (one of the IdP's own pages)."""
        return str(httpx.URL(self.slo_url, params={"ReturnTo": return_to}))

    def idp_initiated_url(self, sp_entity_id: str, relay_state: str | None = None) -> str:
        """Where a browser starts an IdP-initiated sign-in into ``sp_entity_id``."""
        params = {"spentityid": sp_entity_id}
        if relay_state is not None:
            params["RelayState"] = relay_state
        return str(httpx.URL(self.sso_url, params=params))

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)

    def _sps(self) -> list[dict[str, str]]:
        sps = self._state.setdefault("sps", [])
        assert isinstance(sps, list)
        return sps

    def _write(self) -> None:
        self._state["users"] = [user.state() for user in self.users.values()]
        _write_state(self.config_dir, self._state)


def _given(value: T | None, now: T) -> T:
    return now if value is None else value


def _raw(attributes: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(values) for name, values in attributes.items()}


def _signing(entity_id: str, index: int) -> dict[str, str]:
    return {
        "entity_id": entity_id,
        "privatekey": f"idp-{index}.key",
        "certificate": f"idp-{index}.crt",
    }


def _write_state(config_dir: Path, state: Mapping[str, object]) -> None:
    """Replace the JSON atomically, so a request never reads half of it."""
    target = config_dir / STATE_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(target)


def _metadata_ready(url: str) -> bool:
    try:
        response = httpx.get(url, timeout=1.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and "EntityDescriptor" in response.text


@contextmanager
def running_idp(
    sp_entity_id: str | None = None,
    acs_url: str | None = None,
    signing_cert_index: int = 0,
    *,
    key_pairs: int = 2,
) -> Iterator[IdpInfo]:
    """SimpleSAMLphp on a free loopback port, trusting ``sp_entity_id`` (if given).

    Generates ``key_pairs`` signing key pairs and signs with the one at
    ``signing_cert_index``. An SP whose entity id is only known later (hubgate's
    contains the connection id, which exists once the connection was created
    from this IdP's metadata) is added with :meth:`IdpInfo.register_sp`.
    """
    missing = simplesamlphp_missing()
    if missing:
        raise RuntimeError(missing)
    php = php_binary()
    assert php is not None
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    entity_id = f"{base_url}/saml2/idp/metadata.php"
    with tempfile.TemporaryDirectory(prefix="hubgate-idp-") as folder:
        root = Path(folder)
        config_dir, cert_dir, tmp = root / "config", root / "cert", root / "var"
        shutil.copytree(TEMPLATES, config_dir)
        cert_dir.mkdir()
        for sub in ("log", "data", "tmp", "sessions"):
            (tmp / sub).mkdir(parents=True)
        certificates, files = [], []
        for index in range(key_pairs):
            key_pem, cert_pem = generate_key_pair(f"SimpleSAMLphp e2e IdP key {index}")
            (cert_dir / f"idp-{index}.key").write_text(key_pem)
            (cert_dir / f"idp-{index}.crt").write_text(cert_pem)
            certificates.append(cert_pem)
            files.append(cert_dir / f"idp-{index}.crt")
        state: dict[str, object] = {
            "baseurl": base_url,
            "certdir": str(cert_dir),
            "tmpdir": str(tmp),
            "secretsalt": secrets.token_hex(16),
            "adminpassword": secrets.token_hex(8),
            "idp": _signing(entity_id, signing_cert_index),
            "sps": [],
            "sp_xml": [],
        }
        idp = IdpInfo(
            base_url=base_url,
            metadata_url=entity_id,
            entity_id=entity_id,
            sso_url=f"{base_url}/saml2/idp/SSOService.php",
            certificates_pem=tuple(certificates),
            certificate_files=tuple(files),
            signing_cert_index=signing_cert_index,
            config_dir=config_dir,
            log_file=tmp / "log" / "simplesamlphp.log",
            sessions_dir=tmp / "sessions",
            _state=state,
        )
        if sp_entity_id is not None:
            if acs_url is None:
                raise ValueError("an SP needs its ACS URL")
            idp.register_sp(sp_entity_id, acs_url)
        else:
            idp._write()
        env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(config_dir)}
        command = [php, "-S", f"{HOST}:{port}", "-t", str(SIMPLESAMLPHP_WWW)]
        server_log = root / "php-server.log"
        with _process(command, server_log, env=env, cwd=folder) as process:
            _wait_until(
                lambda: _metadata_ready(idp.metadata_url), process, "SimpleSAMLphp", server_log
            )
            try:
                yield idp
            finally:
                print(f"--- SimpleSAMLphp log (tail):\n{idp.log_tail(30)}")


# -- a browser made of httpx ---------------------------------------------------------


@dataclass(frozen=True)
class HtmlForm:
    """A form as a browser would submit it: absolute action, method, and fields
    (inputs with a name; the last value of a repeated name wins)."""

    action: str
    method: str
    fields: dict[str, str]
    input_types: dict[str, str]

    @property
    def is_login(self) -> bool:
        return "password" in self.input_types.values()


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str], dict[str, str], dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((values, {}, {}))
        elif tag in ("input", "button") and self.forms and values.get("name"):
            _, fields, types = self.forms[-1]
            kind = values.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in values:
                return
            fields[values["name"]] = values.get("value", "")
            types[values["name"]] = kind


def parse_forms(html: str, page_url: str) -> list[HtmlForm]:
    parser = _FormParser()
    parser.feed(html)
    return [
        HtmlForm(
            action=urljoin(page_url, attrs.get("action") or page_url),
            method=(attrs.get("method") or "get").upper(),
            fields=fields,
            input_types=types,
        )
        for attrs, fields, types in parser.forms
    ]


class Browser:
    """One person's browser: a cookie jar shared by hubgate and the IdP (both on
    127.0.0.1, like a real browser, which ignores ports for cookies), redirects
    followed by hand so each hop can be inspected (``history``)."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=20.0, follow_redirects=False)
        self.history: list[httpx.Response] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
    ) -> httpx.Response:
        response = self.client.request(method, url, params=params, data=data, headers=headers)
        self.history.append(response)
        return self.follow(response) if follow else response

    def get(
        self, url: str, *, params: Mapping[str, str] | None = None, follow: bool = True
    ) -> httpx.Response:
        return self.request("GET", url, params=params, follow=follow)

    def follow(self, response: httpx.Response, *, stop_at: str | None = None) -> httpx.Response:
        """Follow redirects (as GET) until a page, or until one points at ``stop_at``."""
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                return response
            target = str(response.url.join(response.headers["location"]))
            if stop_at is not None and target.startswith(stop_at):
                return response
            response = self.client.get(target)
            self.history.append(response)
        raise AssertionError(f"more than {MAX_REDIRECTS} redirects, last at {response.url}")

    def submit(
        self,
        form: HtmlForm,
        overrides: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
    ) -> httpx.Response:
        data = {**form.fields, **(overrides or {})}
        if form.method == "POST":
            return self.request("POST", form.action, data=data, headers=headers, follow=follow)
        url = str(httpx.URL(form.action, params=data))
        return self.request("GET", url, headers=headers, follow=follow)

    # -- at the IdP

    def login_form(self, page: httpx.Response) -> HtmlForm | None:
        return next((f for f in parse_forms(page.text, str(page.url)) if f.is_login), None)

    def idp_login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        """Fill in the IdP's username/password form on ``page`` (it keeps the
        hidden ``AuthState``) and return the page the IdP answers with."""
        form = self.login_form(page)
        if form is None:
            raise AssertionError(
                f"no login form at {page.url} ({page.status_code}):\n{page.text[:2000]}"
            )
        return self.submit(form, {"username": username, "password": password})

    @staticmethod
    def saml_response_form(page: httpx.Response) -> HtmlForm | None:
        """The IdP's auto-submit form that carries a SAMLResponse to an ACS, if any."""
        return next(
            (f for f in parse_forms(page.text, str(page.url)) if "SAMLResponse" in f.fields), None
        )
