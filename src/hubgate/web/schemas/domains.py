"""Response documents of an org's email domains in the JSON API."""

from __future__ import annotations

from pydantic import BaseModel

from hubgate.sso.domains import DomainVerification
from hubgate.web.schemas import IsoInstant


class TxtRecordPublic(BaseModel):
    """The DNS TXT record that proves the org holds the domain."""

    name: str
    value: str


class DomainPublic(BaseModel):
    domain: str
    verified: bool
    verified_at: IsoInstant | None
    verified_by: DomainVerification | None
    connection_id: int | None
    txt_record: TxtRecordPublic
