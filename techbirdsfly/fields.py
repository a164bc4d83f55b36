"""Strict DRF fields: a JSON value of the declared type, never one DRF would coerce into it.

DRF's IntegerField takes "5", true and 5.0; CharField takes 5; BooleanField takes "yes" and 1.
Old .NET clients sent typed JSON, and API.md answers wrong types with 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {
        "strict": "A whole number is required, written as a JSON integer (not a string, boolean or fraction).",
    }

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int:  # bool is a subclass of int
            self.fail("strict")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    default_error_messages = {"strict": "A JSON string is required."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("strict")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"strict": "A JSON true or false is required."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("strict")
        return data
