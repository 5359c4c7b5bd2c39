"""OneLogin (Administration)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="onelogin",
    name="OneLogin",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Administration: Applications > Applications > Add App.",
            "Search for SAML Custom Connector (Advanced); name it hubgate; Save.",
            "Configuration tab: fill in as below; Save.",
            "Parameters tab: add the attributes below (Include in SAML assertion).",
            "Users (or Roles) tab: give the app to the people who may sign in.",
        ),
        settings=(
            Setting("Audience (EntityID)", SpValue.ENTITY_ID),
            Setting("Recipient", SpValue.ACS_URL),
            Setting(
                "ACS (Consumer) URL Validator", choose="^ followed by the ACS URL, regex-escaped"
            ),
            Setting("ACS (Consumer) URL", SpValue.ACS_URL),
            Setting("Single Logout URL", SpValue.SLO_URL),
            Setting("SAML nameID format", choose="Email"),
            Setting("SAML signature element", choose="Both (or Assertion)"),
        ),
        attributes=(
            Attribute("email", "email", "Email"),
            Attribute("name", "displayName", "Name"),
            Attribute("groups", "groups", "User Roles (Multi-value parameter)"),
        ),
        groups=(
            "Parameters > add groups, tick Include in SAML assertion and Multi-value "
            "parameter, value User Roles: each role is then its own AttributeValue (without "
            "Multi-value, OneLogin joins them with semicolons into one value).",
        ),
        bring_back=(
            "SSO tab: Issuer URL (https://app.onelogin.com/saml/metadata/…), which is the "
            "metadata URL, or More Actions > SAML Metadata (the XML).",
        ),
        docs="https://developers.onelogin.com/saml",
        check=(
            "The Name source (full name) may be offered as First Name and Last Name only in "
            "your account: check the display name on the test sign-in.",
        ),
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Administration: Applications > Applications > Add App.",
            "Search for OpenId Connect (OIDC); name it hubgate; Save.",
            "Configuration tab: fill in as below; Save.",
            "SSO tab: Application Type Web; Token Endpoint Authentication Method Basic.",
            "Users (or Roles) tab: give the app to the people who may sign in.",
        ),
        settings=(
            Setting("Redirect URI's", SpValue.REDIRECT_URI),
            Setting("Post Logout Redirect URI (when offered)", SpValue.POST_LOGOUT_REDIRECT_URI),
        ),
        attributes=(
            Attribute("email", "email", "scope email"),
            Attribute("name", "name", "scope profile"),
            Attribute("groups", "groups", "Parameters > Groups (scope groups)"),
        ),
        groups=(
            "Parameters tab > Groups: choose what fills the groups claim (User Roles, for "
            "example); hubgate must then ask for the groups scope: have an org admin add "
            "groups to the connection's scopes.",
        ),
        bring_back=(
            "Issuer URL: https://YOUR-SUBDOMAIN.onelogin.com/oidc/2",
            "SSO tab: Client ID and Client Secret.",
        ),
        docs="https://developers.onelogin.com/openid-connect/connect-to-onelogin",
        urls_before_metadata=False,
        check=(
            "Check whether your OneLogin account offers a back-channel logout URI for OIDC "
            "apps (Configuration tab); if it does, give it the back-channel logout URI.",
        ),
    ),
)
