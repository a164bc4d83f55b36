"""Reads of the user app; preferences are cached in the ``user`` alias."""

from __future__ import annotations

from typing import TypedDict

from django.contrib.auth import get_user_model

from techbirdsfly.cache import KINDS, Cached, get_or_compute

from . import cache
from .models import UserPreferences


class Notifications(TypedDict):
    email: bool
    push: bool


class PreferencesData(TypedDict):
    theme: str
    language: str
    timezone: str
    notifications: Notifications


def preferences_data(prefs: UserPreferences) -> PreferencesData:
    """The API's (and the cache's) form of preferences; an unsaved instance gives the defaults."""
    return PreferencesData(
        theme=prefs.theme,
        language=prefs.language,
        timezone=prefs.timezone,
        notifications=Notifications(email=prefs.notify_email, push=prefs.notify_push),
    )


def _cache_ttl(data: PreferencesData | None) -> int:
    return KINDS[cache.PREFERENCES].ttl if data is not None else 0


def user_preferences(*, user_id: int) -> Cached[PreferencesData | None]:
    """The user's preferences (the defaults if never set), or None when there is no such user."""

    def compute() -> PreferencesData | None:
        prefs = UserPreferences.objects.filter(user_id=user_id).first()
        if prefs is None:
            if not get_user_model().objects.filter(pk=user_id).exists():
                return None
            prefs = UserPreferences(user_id=user_id)
        return preferences_data(prefs)

    return get_or_compute(
        cache.PREFERENCES, cache.preferences_key(user_id), compute, scope=cache.user_scope(user_id), ttl_of=_cache_ttl
    )


def preferences_visible(*, user_id: int, user) -> bool:
    """API.md: a user's preferences are seen by the user and by staff; to others they do not exist."""
    return user.is_staff or user_id == user.pk
