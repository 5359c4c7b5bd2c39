"""Response documents of an org's SCIM settings in the JSON API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hubgate.web.schemas import IsoInstant


class ScimTokenPublic(BaseModel):
    id: int
    name: str
    hint: str
    created_by: str
    created_at: IsoInstant
    last_used_at: IsoInstant | None


class ScimTokenCreated(ScimTokenPublic):
    token: str = Field(description="The secret, shown this once.")
    base_url: str = Field(description="The SCIM base URL to give the IdP.")


class GroupTeamPublic(BaseModel):
    team: str
    team_role: str


class GroupTeamsPublic(BaseModel):
    """The teams a SCIM Group places its members in."""

    group: str
    teams: list[GroupTeamPublic]
