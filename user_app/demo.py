"""Demo data for the user app (wired into the project's seed_demo command)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from django.db import transaction

from .cache import invalidate_users
from .models import UserPreferences

_LANGUAGES = ("en", "en-GB", "de", "fr", "es", "pt-BR", "ja", "zh-Hans")
_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Asia/Tokyo")


def seed_preferences(*, users: Sequence, rng: random.Random, count: int) -> int:
    """Give ``count`` random users (at most all of them) saved preferences; users who have some keep them."""
    chosen = rng.sample(list(users), min(max(count, 0), len(users)))
    rows = [
        UserPreferences(
            user_id=user.pk,
            theme=rng.choice(UserPreferences.Theme.values),
            language=rng.choice(_LANGUAGES),
            timezone=rng.choice(_ZONES),
            notify_email=rng.random() < 0.8,
            notify_push=rng.random() < 0.6,
        )
        for user in chosen
    ]
    with transaction.atomic():
        UserPreferences.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        # bulk_create sends no signals, and these users may have cached defaults.
        invalidate_users(user.pk for user in chosen)
    return len(rows)
