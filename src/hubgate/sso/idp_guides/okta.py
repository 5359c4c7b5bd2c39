"""Okta (Admin Console, Okta Identity Engine)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

EMAIL_NAME_ID = "EmailAddress"

GUIDE = IdpGuide(
    slug="okta",
    name="Okta",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Admin Console: Applications > Applications > Create App Integration.",
            "Sign-in method: SAML 2.0; Next; give the app a name (hubgate); Next.",
            "Fill in Configure SAML as below; Finish.",
            "Assignments tab: assign the people or groups who may sign in.",
        ),
        settings=(
            Setting("Single sign-on URL", SpValue.ACS_URL),
            Setting("Use this for Recipient URL and Destination URL", choose="checked"),
            Setting("Audience URI (SP Entity ID)", SpValue.ENTITY_ID),
            Setting("Name ID format", choose=EMAIL_NAME_ID),
            Setting("Application username", choose="Email"),
            Setting("Response / Assertion Signature", choose="Signed / Signed"),
            Setting("Show Advanced Settings > Enable Single Logout", choose="Allow"),
            Setting("Single Logout URL", SpValue.SLO_URL),
            Setting("SP Issuer", SpValue.ENTITY_ID),
            Setting(
                "Signature Certificate",
                choose="hubgate's SP certificate: the X509Certificate of the SP metadata, "
                "saved as a .pem file between BEGIN and END CERTIFICATE lines",
            ),
        ),
        attributes=(
            Attribute("email", "email", "user.email"),
            Attribute("name", "displayName", "user.displayName"),
            Attribute("groups", "groups", "Group Attribute Statements: filter Matches regex .*"),
        ),
        groups=(
            "Groups go in a Group Attribute Statement (Name: groups, Name format: Unspecified), "
            "one AttributeValue per group name; narrow the filter (Starts with, Matches regex) "
            "to the groups hubgate maps.",
        ),
        bring_back=("Sign On tab > SAML 2.0 > Metadata URL (or its XML): give it to hubgate.",),
        docs="https://help.okta.com/oie/en-us/content/topics/apps/apps_app_integration_wizard_saml.htm",
        urls_before_metadata=True,
        check=(
            "Newer Admin Consoles show attribute statements on the Sign On tab "
            "(Attribute statements) rather than in the wizard; the names stay the same.",
        ),
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Admin Console: Applications > Applications > Create App Integration.",
            "Sign-in method: OIDC - OpenID Connect; Application type: Web Application; Next.",
            "Grant type: Authorization Code; fill in the URIs below; Save.",
            "Assignments tab: assign the people or groups who may sign in.",
        ),
        settings=(
            Setting("Sign-in redirect URIs", SpValue.REDIRECT_URI),
            Setting("Sign-out redirect URIs", SpValue.POST_LOGOUT_REDIRECT_URI),
            Setting("Client authentication", choose="Client secret"),
            Setting("Proof Key for Code Exchange (PKCE)", choose="Require PKCE (hubgate sends it)"),
        ),
        attributes=(
            Attribute("email", "email", "scope email (with email_verified)"),
            Attribute("name", "name", "scope profile"),
            Attribute("groups", "groups", "Sign On tab > OpenID Connect ID Token > Groups claim"),
        ),
        groups=(
            "Sign On tab > OpenID Connect ID Token > Edit: Groups claim type Filter, "
            "claim name groups, Matches regex .* (or a narrower filter). This puts group "
            "names in the id_token of the org authorization server.",
            "A custom authorization server (…/oauth2/default) needs its own groups claim: "
            "Security > API > Authorization Servers > Claims > Add Claim (Value type Groups).",
        ),
        bring_back=(
            "Issuer URL: https://YOUR-ORG.okta.com for the org authorization server, or "
            "https://YOUR-ORG.okta.com/oauth2/default for the default custom one.",
            "General tab: Client ID and Client secret.",
        ),
        docs="https://help.okta.com/oie/en-us/content/topics/apps/apps_app_integration_wizard_oidc.htm",
        urls_before_metadata=True,
        check=(
            "Back-channel logout: check whether your Okta org offers a back-channel logout "
            "URI for OIDC apps; if it does, give it the back-channel logout URI.",
        ),
    ),
)
