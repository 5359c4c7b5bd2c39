"""authentik (admin interface, 2024 and later)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="authentik",
    name="authentik",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Admin interface: Applications > Applications > Create with provider.",
            "Name it hubgate; Next; provider type SAML Provider; Next.",
            "Fill in as below (Signing Certificate: choose one, or authentik signs nothing "
            "and hubgate refuses the response); Submit.",
            "Bindings (policy, group or user) on the application: who may sign in.",
        ),
        settings=(
            Setting("ACS URL", SpValue.ACS_URL),
            Setting("Service Provider Binding", choose="Post"),
            Setting("Audience", SpValue.ENTITY_ID),
            Setting("SLS URL", SpValue.SLO_URL),
            Setting("Signing Certificate", choose="authentik Self-signed Certificate, or yours"),
            Setting("Sign assertions", choose="On"),
            Setting(
                "NameID Property Mapping",
                choose="authentik default SAML Mapping: Email",
            ),
        ),
        attributes=(
            Attribute(
                "email",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "authentik default SAML Mapping: Email",
            ),
            Attribute(
                "name",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "authentik default SAML Mapping: Name",
            ),
            Attribute(
                "groups",
                "http://schemas.xmlsoap.org/claims/Group",
                "authentik default SAML Mapping: Groups",
            ),
        ),
        groups=(
            "The default Groups mapping sends the names of all of the person's authentik "
            "groups, one value each.",
        ),
        bring_back=(
            "Providers > hubgate's provider > Metadata: Copy download URL "
            "(https://AUTHENTIK-HOST/api/v3/providers/saml/ID/metadata/?download), or "
            "Download (the XML).",
        ),
        docs="https://docs.goauthentik.io/docs/add-secure-apps/providers/saml/",
        urls_before_metadata=True,
        check=(
            "The SLS URL field appears in recent authentik versions only; without it the "
            "metadata names no SingleLogoutService and hubgate's SLO stays off.",
            "Check the SAML attribute names of the default mappings on the test sign-in "
            "(Customization > Property Mappings shows each one's SAML Attribute Name).",
        ),
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Admin interface: Applications > Applications > Create with provider.",
            "Name it hubgate (its slug is part of the issuer); Next; provider type "
            "OAuth2/OpenID Provider; Next.",
            "Fill in as below (Signing Key: choose one, or authentik signs id_tokens with the "
            "client secret (HS256), which hubgate refuses); Submit.",
            "Bindings (policy, group or user) on the application: who may sign in.",
        ),
        settings=(
            Setting("Client type", choose="Confidential"),
            Setting("Redirect URIs/Origins (Strict)", SpValue.REDIRECT_URI),
            Setting("Signing Key", choose="authentik Self-signed Certificate, or yours"),
            Setting("Back-channel logout URI (when offered)", SpValue.BACKCHANNEL_LOGOUT_URI),
        ),
        attributes=(
            Attribute("email", "email", "scope email"),
            Attribute("name", "name", "scope profile"),
            Attribute("groups", "groups", "scope profile (default mapping)"),
        ),
        groups=(
            "authentik's default profile scope mapping sends groups: the names of the "
            "person's groups.",
        ),
        bring_back=(
            "Issuer URL: https://AUTHENTIK-HOST/application/o/SLUG/ (with the final slash, "
            "as the provider page shows it as OpenID Configuration Issuer).",
            "Client ID and Client Secret from the provider page.",
        ),
        docs="https://docs.goauthentik.io/docs/add-secure-apps/providers/oauth2/",
        check=(
            "email_verified: check on the test sign-in that authentik vouches for the email "
            "(some versions send email_verified false); hubgate links an account only by a "
            "vouched-for email.",
            "Back-channel logout is offered only in recent authentik versions.",
        ),
    ),
)
