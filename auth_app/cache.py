"""The auth app's cache keys and invalidation (alias ``auth``, prefix ``AuthService``).

Token records are keyed by the SHA-256 of the token, never the token. Each record has its own
scope, so revoking a token makes its record stale at once; a user's profile and all the user's
live token records (which carry email and staff flag) go stale whenever the user changes. A token
record also carries the journal number of its user's scope when it was computed, and is refused once
the journal knows a newer one (selectors.token_validate): so a change to a user is one journal row,
however many logins the user has, and the records are made stale in Redis without rows of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from techbirdsfly.cache import KINDS, USER, EntryRef, invalidate

from .models import AuthToken, User

APP = "auth"
TOKEN = "auth.token"  # noqa: S105  (a cache kind, not a secret)
PROFILE = "auth.profile"
LOGIN_FAILURES = "auth.login_failures"
LOGIN_FAILURES_WINDOW = KINDS[LOGIN_FAILURES].ttl  # API.md: 10 failures within 60 s


def token_key(token_hash: str) -> str:
    return f"auth:token:{token_hash}"


def profile_key(user_id: int) -> str:
    return f"auth:profile:{user_id}"


def user_scope(user_id: int) -> str:
    return f"auth:user:{user_id}"


def token_entry(token_hash: str) -> EntryRef:
    # A token record is its own scope: its generation key is ``auth:token:<hash>:gen``.
    return EntryRef(TOKEN, token_key(token_hash), token_key(token_hash))


def own_profile_entry() -> EntryRef:
    """The profile of the user whose token record is read with it (``/me``): resolved in Redis."""
    return _OWN_PROFILE


_OWN_PROFILE = EntryRef(PROFILE, profile_key(USER), user_scope(USER))  # type: ignore[arg-type]


def login_failures_key(email_hash: str) -> str:
    return f"auth:login-failures:{email_hash}"


def address_failures_key(address_hash: str) -> str:
    # Same kind (and 60 s window) as the per-email counter, its own key space.
    return f"auth:address-failures:{address_hash}"


def invalidate_tokens(token_hashes: Iterable[str]) -> None:
    # A token record is its own scope: its generation key is ``auth:token:<hash>:gen``.
    invalidate(APP, *(token_key(h) for h in token_hashes))


def invalidate_users(user_ids: Iterable[int]) -> None:
    user_ids = list(user_ids)
    if not user_ids:
        return
    live_tokens = AuthToken.objects.filter(
        user_id__in=user_ids, kind=AuthToken.Kind.ACCESS, expires_at__gt=timezone.now()
    ).values_list("token_hash", flat=True)
    invalidate(APP, *(user_scope(uid) for uid in user_ids), covered=[token_key(h) for h in live_tokens])


@receiver(post_save, sender=User)
def _user_saved(sender, instance: User, **kwargs) -> None:
    invalidate_users([instance.pk])


@receiver(pre_delete, sender=User)
def _user_deleted(sender, instance: User, **kwargs) -> None:
    # pre_delete, inside the deletion's transaction: the user's tokens are still there to be found.
    # The user row is locked before the cascade deletes the tokens: the lock order of every path that
    # takes both (services.token_pair_issue), so a refresh beside the deletion cannot deadlock it.
    list(User._base_manager.select_for_update(of=("self",)).filter(pk=instance.pk).values_list("pk"))
    invalidate_users([instance.pk])


@receiver(post_save, sender=AuthToken)
@receiver(post_delete, sender=AuthToken)
def _token_changed(sender, instance: AuthToken, created: bool = False, **kwargs) -> None:
    # A token just created has no record to make stale: an unknown token's lookup is never cached.
    if instance.kind == AuthToken.Kind.ACCESS and not created:
        invalidate_tokens([instance.token_hash])
