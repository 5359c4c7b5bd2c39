"""Google Workspace (Admin console)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="google",
    name="Google Workspace",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Admin console: Apps > Web and mobile apps > Add app > Add custom SAML app.",
            "App details: name it hubgate; Continue.",
            "Google Identity Provider details: Download metadata (this is what hubgate needs); "
            "Continue.",
            "Service provider details: fill in as below; Continue.",
            "Attribute mapping: as below; Finish.",
            "User access: turn the app ON for everyone or for the organizational units and "
            "groups who may sign in (it is OFF after creation).",
        ),
        settings=(
            Setting("ACS URL", SpValue.ACS_URL),
            Setting("Entity ID", SpValue.ENTITY_ID),
            Setting("Start URL", choose="leave empty"),
            Setting("Signed response", choose="leave unchecked (Google signs the assertion)"),
            Setting("Name ID format", choose="EMAIL"),
            Setting("Name ID", choose="Basic Information > Primary email"),
        ),
        attributes=(
            Attribute("email", "email", "Basic Information > Primary email"),
            Attribute("name", "displayName", "Basic Information > First name"),
            Attribute("groups", "groups", "Group membership (optional): the groups to send"),
        ),
        groups=(
            "Attribute mapping > Group membership (optional): pick the Google groups to send "
            "and the app attribute groups; a person's groups among those arrive as the "
            "group names.",
            "Google has no full-name attribute to map, only First name and Last name: the "
            "display name in hubgate is then the first name.",
        ),
        bring_back=(
            "The metadata file from Download metadata (GoogleIDPMetadata.xml): upload it to "
            "hubgate. Google gives no metadata URL.",
        ),
        docs="https://support.google.com/a/answer/6087519",
        check=(
            "Group membership in SAML attribute mapping is not offered in every Workspace "
            "edition, and Google limits how many groups one app may send: if the section is "
            "missing, people get the org's default role; check on the test sign-in which "
            "groups arrive.",
            "Google's SAML apps do not support single logout: its metadata names no "
            "SingleLogoutService, so hubgate's SLO stays off for this connection.",
        ),
    ),
    no_oidc=(
        "Google Workspace has no custom OpenID Connect app in the Admin console (OAuth "
        "clients live in Google Cloud and send no groups): use SAML."
    ),
)
