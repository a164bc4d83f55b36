"""Reads of the auth app, cached in the ``auth`` alias."""

from __future__ import annotations

from typing import TypedDict

from django.utils import timezone

from techbirdsfly.cache import Cached, clock, get_or_compute, journal

from . import cache
from .models import AuthToken, User
from .tokens import checked_hash


class TokenRecord(TypedDict):
    """What Redis holds for a live access token: nothing secret, nothing that proves identity."""

    userId: int
    email: str
    name: str
    isStaff: bool
    exp: int  # epoch seconds
    family: str
    pair: str
    # The journal's newest number for the user's scope that the record includes: a newer one (a
    # password change, a deactivation, a demotion) makes the record stale (see _current).
    userGeneration: int


def _token_record(digest: str) -> TokenRecord | None:
    known = journal.notes()  # before the user is read
    token = (
        AuthToken.objects.select_related("user")
        .filter(token_hash=digest, kind=AuthToken.Kind.ACCESS, revoked_at__isnull=True)
        .first()
    )
    if token is None or token.expires_at <= timezone.now() or not token.user.is_active:
        return None
    user = token.user
    return TokenRecord(
        userId=user.pk,
        email=user.email,
        name=user.name,
        isStaff=user.is_staff,
        exp=int(token.expires_at.timestamp()),
        family=str(token.family),
        pair=str(token.pair),
        userGeneration=journal.floor_as_of(cache.APP, cache.user_scope(user.pk), known),
    )


def _seconds_left(record: TokenRecord | None) -> int:
    return record["exp"] - int(clock.now()) if record else 0


def _current(record: TokenRecord | None) -> bool:
    """Not older than the newest change to its user that this process knows (the journal)."""
    if record is None:
        return True
    return record.get("userGeneration", -1) >= journal.floor(cache.APP, cache.user_scope(record["userId"]))


def token_validate(*, raw_token: str, digest: str | None = None) -> Cached[TokenRecord | None]:
    """The record of a live access token, or None. A hit costs one Redis round trip and no SQL.

    ``digest``: the token's hash from tokens.checked_hash, when the caller has checked it already.
    A token that fails the check costs no I/O.
    """
    digest = digest or checked_hash(raw_token)
    if digest is None:
        return Cached(None, False)
    key = cache.token_key(digest)
    result = get_or_compute(
        cache.TOKEN, key, lambda: _token_record(digest), scope=key, ttl_of=_seconds_left, fresh=_current
    )
    if result.value is not None and result.value["exp"] <= clock.now():
        return Cached(None, result.from_cache)
    return result


def user_profile(*, user_id: int) -> Cached[dict]:
    def compute() -> dict:
        user = User.objects.get(pk=user_id)
        return {
            "id": user.pk,
            "email": user.email,
            "name": user.name,
            "isStaff": user.is_staff,
            "dateJoined": user.date_joined.isoformat(),
        }

    return get_or_compute(cache.PROFILE, cache.profile_key(user_id), compute, scope=cache.user_scope(user_id))
