"""Writes of the user app: a user's preferences."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone as dj_timezone

from .models import UserPreferences


def preferences_update(
    *,
    user_id: int,
    theme: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
    notify_email: bool | None = None,
    notify_push: bool | None = None,
) -> UserPreferences:
    """Set the given preferences (None keeps a value), creating the user's row on first use.

    Saving makes the cached preferences stale after commit (the post_save receiver in cache.py).
    """
    with transaction.atomic():
        # Locked, so that two concurrent partial updates both land.
        prefs, _ = UserPreferences.objects.select_for_update().get_or_create(user_id=user_id)
        for field, value in (
            ("theme", theme),
            ("language", language),
            ("timezone", timezone),
            ("notify_email", notify_email),
            ("notify_push", notify_push),
        ):
            if value is not None:
                setattr(prefs, field, value)
        prefs.updated_at = dj_timezone.now()
        prefs.save()
    return prefs
