"""Which own account a platform provider's verified answer signs in to, as one
pure function over facts already loaded (README "Who owns an account").

1. An existing link (provider, subject) signs in its account, whatever the
   address says now: after the first link an identity is bound by subject alone.
2. Otherwise only an address the provider vouches for counts (OIDC
   ``email_verified`` true): it links the account that has verified it;
3. or, when no account has verified it, makes a new account holding it verified
   (an unverified holder loses it first, as at sign-up).

Whether an org in managed mode takes the sign-in is asked afterwards, of the
account (or address) chosen here, as for a password.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Create", "Facts", "Link", "Refuse", "SignIn", "decide"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision needs: the link of the answer's subject, the address it
    names (normalized, or ``None`` when it names none usable), whether the
    provider vouches for it, and the account that has verified that address."""

    linked_user: int | None
    email: str | None
    email_vouched: bool
    verified_holder: int | None


@dataclass(frozen=True, slots=True)
class SignIn:
    user_id: int


@dataclass(frozen=True, slots=True)
class Link:
    """Bind the subject to this account (it verified the vouched address), then sign in."""

    user_id: int
    email: str


@dataclass(frozen=True, slots=True)
class Create:
    """A new account whose primary address is the vouched one, verified."""

    email: str


@dataclass(frozen=True, slots=True)
class Refuse:
    code: str


Decision = SignIn | Link | Create | Refuse


def decide(facts: Facts) -> Decision:
    if facts.linked_user is not None:
        return SignIn(facts.linked_user)
    if facts.email is None:
        return Refuse("provider_email_missing")
    if not facts.email_vouched:
        return Refuse("provider_email_unverified")
    if facts.verified_holder is not None:
        return Link(facts.verified_holder, facts.email)
    return Create(facts.email)
