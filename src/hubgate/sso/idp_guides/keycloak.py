"""Keycloak (admin console, Keycloak 19 and later)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="keycloak",
    name="Keycloak",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Admin console, in your realm: Clients > Create client.",
            "Client type SAML; Client ID: hubgate's entity ID (below); Next; fill in the "
            "URLs below; Save.",
            "Keys tab: turn Client signature required off (hubgate does not sign its "
            "AuthnRequests unless told to).",
            "Client scopes tab > hubgate-dedicated > Add mapper > By configuration: the "
            "mappers below.",
        ),
        settings=(
            Setting("Client ID", SpValue.ENTITY_ID),
            Setting("Valid redirect URIs", SpValue.ACS_URL),
            Setting("Master SAML Processing URL", SpValue.ACS_URL),
            Setting("Name ID format", choose="email (and Force name ID format on)"),
            Setting("Signature and Encryption > Sign assertions", choose="On"),
            Setting("Advanced > Assertion Consumer Service POST Binding URL", SpValue.ACS_URL),
            Setting("Advanced > Logout Service Redirect Binding URL", SpValue.SLO_URL),
            Setting("Advanced > Logout Service POST Binding URL", SpValue.SLO_URL),
        ),
        attributes=(
            Attribute("email", "email", "mapper User Property, property email"),
            Attribute("name", "displayName", "mapper User Property, property firstName"),
            Attribute("groups", "groups", "mapper Group list"),
        ),
        groups=(
            "Mapper Group list: Group attribute name groups, Single Group Attribute on, Full "
            "group path off (names like ml-admins; on, they read /parent/ml-admins).",
            "Keycloak has no full-name user property: the display name is then the first name.",
        ),
        bring_back=(
            "The realm's metadata URL: https://KEYCLOAK-HOST/realms/REALM/protocol/saml/descriptor "
            "(Realm settings > General > Endpoints > SAML 2.0 Identity Provider Metadata).",
        ),
        docs="https://www.keycloak.org/docs/latest/server_admin/#_client-saml-configuration",
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Admin console, in your realm: Clients > Create client.",
            "Client type OpenID Connect; Client ID hubgate; Next.",
            "Client authentication on; Standard flow only; Next; fill in the URIs below; Save.",
            "Client scopes tab > hubgate-dedicated > Add mapper > By configuration > Group "
            "Membership: Token Claim Name groups, Full group path off, Add to ID token on.",
        ),
        settings=(
            Setting("Valid redirect URIs", SpValue.REDIRECT_URI),
            Setting("Valid post logout redirect URIs", SpValue.POST_LOGOUT_REDIRECT_URI),
            Setting("Front channel logout", choose="Off"),
            Setting("Backchannel logout URL", SpValue.BACKCHANNEL_LOGOUT_URI),
            Setting("Backchannel logout session required", choose="On"),
        ),
        attributes=(
            Attribute("email", "email", "scope email (with email_verified)"),
            Attribute("name", "name", "scope profile"),
            Attribute("groups", "groups", "mapper Group Membership"),
        ),
        groups=(
            "The Group Membership mapper sends group names (Full group path off) in the "
            "id_token; without it Keycloak sends no groups.",
        ),
        bring_back=(
            "Issuer URL: https://KEYCLOAK-HOST/realms/REALM",
            "Client ID, and Credentials tab > Client secret.",
        ),
        docs="https://www.keycloak.org/docs/latest/server_admin/#_oidc_clients",
    ),
)
