"""hubgate's own signing keys: the store behind the identity it asserts to
upstreams (:mod:`hubgate.gate.assertion`) and its JWK Set (RFC 7517 §5) at
``/.well-known/jwks.json``.

ES256 (ECDSA P-256, RFC 7518 §3.4): every JOSE library a model server may use
verifies it (EdDSA is still missing from several), its keys are small, and a
signature costs tens of microseconds.

A key's life is a pair of times, so every instance agrees on it without talking:

- made by :func:`rotate` (``hubgate keys rotate``, or :func:`rotate_if_due` on the
  worker's schedule), it is published at once but signs only from
  ``activated_at`` = now + :data:`PUBLISH_AHEAD`, long after verifiers caching the
  JWK Set for its ``max-age`` have fetched it; the key it replaces is retired at
  that same instant;
- a retired key stays published for :data:`KEEP_AFTER_RETIRE`, longer than any
  assertion it signed lives, and is then deleted (:func:`prune`);
- the very first key (:func:`ensure_signer`, made lazily when one is needed)
  signs at once: there was no earlier key set to cache, and verifiers re-fetch
  the set when they meet an unknown ``kid``.

``generation`` is unique, so when two instances make the next key together one
insert fails and that instance uses the other's key: no lock is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate.audit import Actor, record
from hubgate.db.engine import Database
from hubgate.db.models import SigningKey
from hubgate.sealed import Sealer

__all__ = [
    "ALGORITHM",
    "KEEP_AFTER_RETIRE",
    "PUBLISH_AHEAD",
    "LoadedKey",
    "all_keys",
    "ensure_signer",
    "load_signers",
    "prune",
    "published_jwks",
    "rotate",
    "rotate_if_due",
]

ALGORITHM = "ES256"
_CURVE = "P-256"
PUBLISH_AHEAD = timedelta(minutes=10)
"""Twice the JWK Set's ``Cache-Control: max-age`` (300 s): a new key is in every
verifier's cache before it signs."""
KEEP_AFTER_RETIRE = timedelta(minutes=3)
"""Longer than the longest assertion (60 s) plus verifier leeway and the
per-process key reload (:data:`hubgate.gate.assertion.RELOAD_SECONDS`)."""


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A signing key opened for use: it signs within [activated_at, retired_at)."""

    kid: str
    private: ECKey
    activated_at: datetime
    retired_at: datetime | None

    def signs_at(self, now: datetime) -> bool:
        return self.activated_at <= now and (self.retired_at is None or now < self.retired_at)


def load_signers(db: Session, sealer: Sealer, now: datetime) -> list[LoadedKey]:
    """Keys that sign now or will (not yet retired), opened; oldest first."""
    rows = db.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now))
        .order_by(SigningKey.generation)
    )
    return [_opened(sealer, row) for row in rows]


def _opened(sealer: Sealer, row: SigningKey) -> LoadedKey:
    private = ECKey.import_key(sealer.unseal(row.private_key_sealed), {"kid": row.kid})
    return LoadedKey(row.kid, private, row.activated_at, row.retired_at)


def published_jwks(db: Session, now: datetime) -> dict[str, Any]:
    """The public keys a verifier may meet: every key not retired, and those retired
    less than :data:`KEEP_AFTER_RETIRE` ago (their assertions may still be alive)."""
    rows = db.scalars(
        select(SigningKey.public_jwk)
        .where(
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now - KEEP_AFTER_RETIRE)
        )
        .order_by(SigningKey.generation)
    )
    return {"keys": [json.loads(jwk) for jwk in rows]}


def all_keys(db: Session) -> list[SigningKey]:
    """Every stored key, oldest first (for operators: ``hubgate keys list``)."""
    return list(db.scalars(select(SigningKey).order_by(SigningKey.generation)))


def ensure_signer(database: Database, sealer: Sealer, now: datetime) -> None:
    """Make a key that signs at once, unless one does (or another instance makes
    it meanwhile). Generating a P-256 key is local and quick: no network."""
    try:
        with database.transaction() as db:
            if not any(key.signs_at(now) for key in load_signers(db, sealer, now)):
                row = _insert(db, sealer, now, activated_at=now)
                _audit(db, Actor.system("signing-keys"), "signing_key.created", row)
    except IntegrityError:
        return  # another instance made the key; the caller reads it next


def rotate(
    db: Session, sealer: Sealer, actor: Actor, now: datetime, *, at_once: bool = False
) -> SigningKey:
    """A new key, published now and signing from ``now + PUBLISH_AHEAD``; the keys
    that sign until then retire at that instant. ``at_once`` is for a leaked key:
    the new key signs now and the others leave the key set now (verifiers drop
    them when their cached copy expires). Raises ``IntegrityError`` when another
    instance rotated at the same moment."""
    activates = now if at_once else now + PUBLISH_AHEAD
    retires = now - KEEP_AFTER_RETIRE if at_once else activates
    db.execute(
        update(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > retires))
        .values(retired_at=retires)
    )
    row = _insert(db, sealer, now, activated_at=activates)
    _audit(db, actor, "signing_key.rotated", row, at_once=at_once)
    return row


def rotate_if_due(database: Database, sealer: Sealer, now: datetime, every: timedelta) -> bool:
    """The schedule: rotate when the newest key has signed for ``every``. One
    instance wins a race (the unique ``generation``); the others do nothing."""
    try:
        with database.transaction() as db:
            newest = db.scalar(select(func.max(SigningKey.activated_at)))
            if newest is None or newest > now - every:
                return False
            rotate(db, sealer, Actor.system("schedule"), now)
            return True
    except IntegrityError:
        return False


def prune(database: Database, now: datetime) -> int:
    """Delete keys retired longer ago than :data:`KEEP_AFTER_RETIRE`: they have left
    the JWK Set and their private halves are no longer needed."""
    with database.transaction() as db:
        gone = db.execute(
            delete(SigningKey).where(SigningKey.retired_at <= now - KEEP_AFTER_RETIRE)
        )
        return int(getattr(gone, "rowcount", 0) or 0)


def _insert(db: Session, sealer: Sealer, now: datetime, *, activated_at: datetime) -> SigningKey:
    key = ECKey.generate_key(_CURVE, auto_kid=True)
    public = {**key.as_dict(private=False), "alg": ALGORITHM, "use": "sig"}
    row = SigningKey(
        kid=key.kid, generation=_next_generation(db), algorithm=ALGORITHM,
        private_key_sealed=sealer.seal(key.as_pem(private=True).decode()),
        public_jwk=json.dumps(public, sort_keys=True), created_at=now, activated_at=activated_at,
    )  # fmt: skip
    db.add(row)
    db.flush()
    return row


def _next_generation(db: Session) -> int:
    """One more than the newest key's; two instances reading it at once get the
    same number, and the unique constraint lets only the first insert it."""
    return (db.scalar(select(func.max(SigningKey.generation))) or 0) + 1


def _audit(db: Session, actor: Actor, action: str, row: SigningKey, **data: object) -> None:
    details = {"activated_at": row.activated_at.isoformat(), **data}
    record(db, actor, action, target=f"signing_key/{row.kid}", data=details)
