from __future__ import annotations

import random

from auth_app.tests.factories import make_user
from techbirdsfly.testing import CacheTestCase
from user_app.demo import seed_preferences
from user_app.models import UserPreferences
from user_app.serializers import PreferencesSerializer


class SeedPreferencesTests(CacheTestCase):
    def test_gives_count_users_valid_preferences_and_keeps_existing_ones(self):
        users = [make_user() for _ in range(6)]
        UserPreferences.objects.create(user=users[0], theme="light", language="xx")
        self.assertEqual(seed_preferences(users=users, rng=random.Random(1), count=100), 6)
        self.assertEqual(UserPreferences.objects.count(), 6)
        self.assertEqual(UserPreferences.objects.get(user=users[0]).language, "xx")
        for prefs in UserPreferences.objects.exclude(user=users[0]):
            body = {"theme": prefs.theme, "language": prefs.language, "timezone": prefs.timezone}
            serializer = PreferencesSerializer(data={**body, "notifications": {"email": True, "push": False}})
            self.assertTrue(serializer.is_valid(), serializer.errors)

    def test_nothing_to_do(self):
        self.assertEqual(seed_preferences(users=[], rng=random.Random(1), count=5), 0)
        self.assertEqual(seed_preferences(users=[make_user()], rng=random.Random(1), count=0), 0)
