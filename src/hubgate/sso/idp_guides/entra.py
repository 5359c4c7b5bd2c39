"""Microsoft Entra ID (Entra admin center)."""

from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue

GUIDE = IdpGuide(
    slug="entra",
    name="Microsoft Entra ID",
    saml=ProtocolGuide(
        protocol="saml",
        create=(
            "Entra admin center: Identity > Applications > Enterprise applications > "
            "New application > Create your own application.",
            "Name it hubgate; choose Integrate any other application you don't find in the "
            "gallery (Non-gallery); Create.",
            "Single sign-on > SAML; Basic SAML Configuration > Edit: fill in as below.",
            "Users and groups: assign the people or groups who may sign in.",
        ),
        settings=(
            Setting("Identifier (Entity ID)", SpValue.ENTITY_ID),
            Setting("Reply URL (Assertion Consumer Service URL)", SpValue.ACS_URL),
            Setting("Logout Url (Optional)", SpValue.SLO_URL),
            Setting(
                "Attributes & Claims > Unique User Identifier (Name ID)",
                choose="Name identifier format Email address, source attribute user.mail "
                "(or user.userprincipalname when that is the address)",
            ),
        ),
        attributes=(
            Attribute(
                "email",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "user.mail (sent by default)",
            ),
            Attribute(
                "name",
                "http://schemas.microsoft.com/identity/claims/displayname",
                "Add new claim: name displayname, namespace "
                "http://schemas.microsoft.com/identity/claims, source user.displayname",
            ),
            Attribute(
                "groups",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                "Add a group claim",
            ),
        ),
        groups=(
            "Attributes & Claims > Add a group claim: choose Groups assigned to the application "
            "(then assign those groups under Users and groups), not All groups.",
            "The values are group object ids (GUIDs) by default: map those ids in hubgate, or "
            "pick sAMAccountName (groups synced from Active Directory) or Cloud-only group "
            "display names as the source attribute to get names.",
            "Group overage: a SAML token carries at most 150 groups; past that Entra sends "
            "http://schemas.microsoft.com/claims/groups.link instead and no groups at all. "
            "Groups assigned to the application avoids it.",
        ),
        bring_back=(
            "SAML Certificates: App Federation Metadata Url (https://login.microsoftonline.com/"
            "TENANT-ID/federationmetadata/2007-06/federationmetadata.xml?appid=APP-ID), or "
            "Federation Metadata XML (download).",
        ),
        docs="https://learn.microsoft.com/en-us/entra/identity/enterprise-apps/add-application-portal-setup-sso",
        check=(
            "Cloud-only group display names is only offered with Groups assigned to the "
            "application; check it is in your tenant's group claim options.",
        ),
    ),
    oidc=ProtocolGuide(
        protocol="oidc",
        create=(
            "Entra admin center: Identity > Applications > App registrations > New registration.",
            "Supported account types: Accounts in this organizational directory only "
            "(single tenant); Redirect URI: platform Web, the redirect URI below; Register.",
            "Certificates & secrets > Client secrets > New client secret: copy its Value.",
            "Token configuration: add the optional claim email (ID token) and a groups claim.",
            "Authentication > Web: add the post-logout redirect URI below as a second "
            "redirect URI (Entra takes post_logout_redirect_uri from that list); leave "
            "Front-channel logout URL empty.",
        ),
        settings=(
            Setting("Redirect URI (Web)", SpValue.REDIRECT_URI),
            Setting(
                "Authentication > Web > Redirect URIs (a second one: post-logout)",
                SpValue.POST_LOGOUT_REDIRECT_URI,
            ),
        ),
        attributes=(
            Attribute("email", "email", "Token configuration > Add optional claim > ID > email"),
            Attribute("name", "name", "scope profile"),
            Attribute("groups", "groups", "Token configuration > Add groups claim"),
        ),
        groups=(
            "Token configuration > Add groups claim: Groups assigned to the application; the "
            "values are object ids unless you choose sAMAccountName or cloud-only display names.",
            "Group overage: an id_token carries at most 200 groups; past that Entra sends "
            "_claim_names / _claim_sources (a Graph link) and no groups claim. hubgate does "
            "not follow that link: assign groups to the application to stay under the limit.",
            "Entra sends no email_verified claim: hubgate then takes the email as not vouched "
            "for. Add the optional claim xms_edov (email domain owner verified), and have an "
            "org admin set the connection's email_verified_claim to xms_edov (API PATCH).",
        ),
        bring_back=(
            "Issuer URL: https://login.microsoftonline.com/TENANT-ID/v2.0 with your tenant's "
            "id (Overview > Directory (tenant) ID), never common or organizations: their "
            "discovery documents name the issuer …/{tenantid}/v2.0, which hubgate refuses.",
            "Overview > Application (client) ID, and the client secret's Value.",
        ),
        docs="https://learn.microsoft.com/en-us/entra/identity-platform/quickstart-register-app",
        check=(
            "Entra ID does not offer OpenID back-channel logout: a sign-out at Microsoft does "
            "not end the hubgate session, which ends with its own lifetime.",
            "xms_edov: check that it is listed among the ID token optional claims in your tenant.",
        ),
    ),
)
