from __future__ import annotations

import functools
import re
import zoneinfo

from rest_framework import serializers

from techbirdsfly.fields import StrictBooleanField, StrictCharField

from .models import UserPreferences

# A BCP 47 language tag, loosely: a 2-3 letter language and optional subtags (en, en-US, zh-Hant-TW).
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
LANGUAGE_MAX = 35  # RFC 5646 §4.4.1: implementations should support tags of at least 35 characters


@functools.cache
def time_zones() -> frozenset[str]:
    """IANA zone names of the system's (or the tzdata package's) database. Read once per process."""
    # "localtime" is a host file, not a zone; "Factory" is a placeholder meaning "not set".
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


class NotificationsSerializer(serializers.Serializer):
    email = StrictBooleanField()
    push = StrictBooleanField()


class PreferencesSerializer(serializers.Serializer):
    """PUT needs every field; PATCH (``partial=True``) any of them, notifications included."""

    theme = serializers.ChoiceField(choices=UserPreferences.Theme.choices)
    language = StrictCharField(max_length=LANGUAGE_MAX)
    timezone = StrictCharField(max_length=64)
    notifications = NotificationsSerializer()

    def validate_language(self, value: str) -> str:
        if not LANGUAGE_TAG.match(value):
            raise serializers.ValidationError("Enter a BCP 47 language tag such as 'en' or 'pt-BR'.")
        return value

    def validate_timezone(self, value: str) -> str:
        if value not in time_zones():
            raise serializers.ValidationError("Enter an IANA time zone name such as 'Europe/Berlin' or 'UTC'.")
        return value

    def changes(self) -> dict:
        """The validated data as keyword arguments of services.preferences_update."""
        data = dict(self.validated_data)
        notifications = data.pop("notifications", {})
        if "email" in notifications:
            data["notify_email"] = notifications["email"]
        if "push" in notifications:
            data["notify_push"] = notifications["push"]
        return data


class CachedPreferencesSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = PreferencesSerializer()


class PreferencesAnswerSerializer(serializers.Serializer):
    data = PreferencesSerializer()
