"""``docs/idp-guides.md`` written from the guides, so the page and the portal say
the same thing: ``python -m hubgate.sso.idp_guides.markdown > docs/idp-guides.md``."""

from __future__ import annotations

from hubgate.sso.idp_guides import GUIDES, read_by_default
from hubgate.sso.idp_guides.guide import IdpGuide, ProtocolGuide, Setting, SpValue

__all__ = ["render"]

_SAML = "https://HUBGATE/sso/saml/ID"
_OIDC = "https://HUBGATE/sso/oidc/ID"
PLACEHOLDERS = {
    SpValue.ENTITY_ID: f"{_SAML}/metadata",
    SpValue.ACS_URL: f"{_SAML}/acs",
    SpValue.SP_METADATA_URL: f"{_SAML}/metadata",
    SpValue.SLO_URL: f"{_SAML}/slo",
    SpValue.REDIRECT_URI: f"{_OIDC}/callback",
    SpValue.BACKCHANNEL_LOGOUT_URI: f"{_OIDC}/backchannel-logout",
    SpValue.POST_LOGOUT_REDIRECT_URI: f"{_OIDC}/logged-out",
}
_INTRO = """\
# Setting up your identity provider

<!-- Written by `python -m hubgate.sso.idp_guides.markdown`
     from src/hubgate/sso/idp_guides/: edit those, not this page. -->

One guide per identity provider, for SAML and, where the provider offers it for
custom apps, OpenID Connect. The setup portal (`/setup/{key}`) shows the same
guides with the connection's own values filled in and a copy button beside each:
pick your provider on its first page.

In this page `HUBGATE` stands for hubgate's address (`HUBGATE_BASE_URL`) and `ID`
for the connection's number, which hubgate gives once it has your provider's SAML
metadata or OIDC issuer and client. Where a provider wants hubgate's URLs first,
type `https://hubgate.invalid/` in those fields, bring back its metadata or client,
then replace them with the real values.

Items under *To check* are not the same in every edition or version of the
provider: check them, and look at what the portal's test sign-in received.

"""


def render() -> str:
    contents = "".join(f"- [{g.name}](#{g.slug})\n" for g in GUIDES.values())
    return _INTRO + contents + "".join(_idp(g) for g in GUIDES.values())


def _idp(guide: IdpGuide) -> str:
    text = f'\n<a id="{guide.slug}"></a>\n\n## {guide.name}\n'
    text += _protocol(guide, guide.saml)
    if guide.oidc is not None:
        return text + _protocol(guide, guide.oidc)
    return text + f"\n### OpenID Connect\n\n{guide.no_oidc}\n"


def _protocol(guide: IdpGuide, g: ProtocolGuide) -> str:
    title = "SAML" if g.protocol == "saml" else "OpenID Connect"
    known = read_by_default(g.protocol)
    rows = "".join(
        f"| {a.carries} | `{a.name}` | {a.source} | "
        f"{'reads it already' if f'{a.carries}:{a.name}' in known else 'enter this name'} |\n"
        for a in g.attributes
    )
    return (
        f"\n### {title}\n\nCreate the app:\n\n{_numbered(g.create)}\n"
        f"Values for {guide.name}:\n\n| Field | Value |\n| --- | --- |\n"
        + "".join(_setting(s) for s in g.settings)
        + f"\n{'Attributes' if g.protocol == 'saml' else 'Claims'} to send:\n\n"
        f"| Carries | Name | In {guide.name} | hubgate |\n| --- | --- | --- | --- |\n{rows}"
        f"\nGroups:\n\n{_bullets(g.groups)}\nBring back to hubgate:\n\n{_bullets(g.bring_back)}"
        + (f"\nTo check:\n\n{_bullets(g.check)}" if g.check else "")
        + f"\n{guide.name}'s documentation: <{g.docs}>\n"
    )


def _setting(setting: Setting) -> str:
    value = f"`{PLACEHOLDERS[setting.fills]}`" if setting.fills else setting.choose
    return f"| {setting.field} | {value} |\n"


def _numbered(items: tuple[str, ...]) -> str:
    return "".join(f"{n}. {item}\n" for n, item in enumerate(items, 1))


def _bullets(items: tuple[str, ...]) -> str:
    return "".join(f"- {item}\n" for item in items)


if __name__ == "__main__":
    print(render(), end="")
