from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from techbirdsfly.db import SavedWithItsInvalidation, one_transaction


class UserPreferencesQuerySet(models.QuerySet):
    @one_transaction
    def update(self, **kwargs):
        # QuerySet.update sends no signals; cached preferences must still go stale.
        from .cache import invalidate_users

        ids = list(self.values_list("user_id", flat=True))
        updated = super().update(**kwargs)
        invalidate_users(ids)
        return updated


class UserPreferences(SavedWithItsInvalidation, models.Model):
    """A user's settings. A user without a row has the defaults (selectors.DEFAULTS)."""

    class Theme(models.TextChoices):
        LIGHT = "light"
        DARK = "dark"
        SYSTEM = "system"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preferences"
    )
    theme = models.CharField(max_length=6, choices=Theme.choices, default=Theme.SYSTEM)
    language = models.CharField(max_length=35, default="en", help_text="A BCP 47 language tag")
    timezone = models.CharField(max_length=64, default="UTC", help_text="An IANA time zone name")
    notify_email = models.BooleanField(default=True)
    notify_push = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    objects = UserPreferencesQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"
