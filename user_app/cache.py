"""The user app's cache keys and invalidation (alias ``user``, prefix ``UserService``).

A user's preferences go stale when they change (the API, the Django admin, a bulk ``update``)
and when the user is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from techbirdsfly.cache import EntryRef, invalidate

from .models import UserPreferences

APP = "user"
PREFERENCES = "user.preferences"


def preferences_key(user_id: int) -> str:
    return f"user:preferences:{user_id}"


def user_scope(user_id: int) -> str:
    return f"user:user:{user_id}"


def preferences_entry(user_id: int) -> EntryRef:
    return EntryRef(PREFERENCES, preferences_key(user_id), user_scope(user_id))


def invalidate_users(user_ids: Iterable[int]) -> None:
    invalidate(APP, *(user_scope(user_id) for user_id in user_ids))


@receiver(post_save, sender=UserPreferences)
@receiver(post_delete, sender=UserPreferences)
def _preferences_changed(sender, instance: UserPreferences, **kwargs) -> None:
    invalidate_users([instance.user_id])


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_deleted(sender, instance, **kwargs) -> None:
    # A user who never saved preferences has cached defaults and no row whose deletion would tell.
    invalidate_users([instance.pk])
