"""JumpCloud (Admin Portal)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="jumpcloud",
    name="JumpCloud",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Admin Portal: SSO Applications > Add New Application > Custom Application; Next.",
            "Choose Manage Single Sign-On (SSO) > Configure SSO with SAML; name it hubgate; "
            "Save Application, then Configure Application.",
            "SSO tab: fill in as below; Save.",
            "User Groups tab: bind the JumpCloud user groups who may sign in.",
        ),
        settings=(
            Setting(
                "IdP Entity ID",
                choose="a name of yours, unique in your account (jumpcloud-hubgate)",
            ),
            Setting("SP Entity ID", SpValue.ENTITY_ID),
            Setting("ACS URLs > Default URL", SpValue.ACS_URL),
            Setting("SAMLSubject NameID", choose="email"),
            Setting(
                "SAMLSubject NameID Format",
                choose="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            ),
            Setting("Signature Algorithm", choose="RSA-SHA256"),
            Setting("Sign", choose="Assertion"),
            Setting("Single Logout URL (when offered)", SpValue.SLO_URL),
        ),
        attributes=(
            Attribute("email", "email", "email"),
            Attribute("name", "displayName", "displayname"),
            Attribute("groups", "memberOf", "Group Attributes > include group attribute"),
        ),
        groups=(
            "Group Attributes: tick include group attribute and keep its name memberOf: the "
            "names of the person's user groups bound to this app arrive, one value each.",
        ),
        bring_back=("SSO tab: Export Metadata (the XML file): upload it to hubgate.",),
        docs="https://jumpcloud.com/support/sso-with-saml",
        urls_before_metadata=True,
        check=(
            "Single logout: check whether your JumpCloud account offers a Single Logout URL "
            "for custom SAML apps; without it the metadata names no SingleLogoutService "
            "and hubgate's SLO stays off.",
            "The displayname user attribute: check it is filled for your users, or send "
            "firstname instead.",
        ),
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Admin Portal: SSO Applications > Add New Application > Custom Application; Next.",
            "Choose Manage Single Sign-On (SSO) > Configure SSO with OIDC; name it hubgate; "
            "Save Application, then Configure Application.",
            "SSO tab: fill in as below; Activate: JumpCloud shows the client secret once.",
            "User Groups tab: bind the JumpCloud user groups who may sign in.",
        ),
        settings=(
            Setting("Redirect URIs", SpValue.REDIRECT_URI),
            Setting("Client Authentication Type", choose="Client Secret Basic"),
            Setting("Login URL", choose="hubgate's sign-in page (any https URL of hubgate)"),
        ),
        attributes=(
            Attribute("email", "email", "Standard Scopes: Email"),
            Attribute("name", "name", "Standard Scopes: Profile"),
            Attribute("groups", "groups", "Group Attributes > include group attribute"),
        ),
        groups=(
            "Group Attributes: tick include group attribute and name it groups; hubgate "
            "reads the claim groups unless told otherwise.",
        ),
        bring_back=(
            "Issuer URL: https://oauth.id.jumpcloud.com/ (with the final slash).",
            "Client ID and Client Secret, shown when the app is activated.",
        ),
        docs="https://jumpcloud.com/support/sso-with-oidc",
        urls_before_metadata=True,
        check=(
            "Check whether the groups claim needs a scope of its own in your account; "
            "if so, have an org admin add it to the connection's scopes.",
        ),
    ),
)
