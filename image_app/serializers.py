from __future__ import annotations

import re

from django.core.validators import URLValidator
from rest_framework import serializers

from techbirdsfly.converters import BIGINT_MAX
from techbirdsfly.fields import StrictCharField, StrictIntegerField
from techbirdsfly.paging import PageQuerySerializer

from .models import Image

MIN_SIZE, MAX_SIZE = 64, 2048
CHECKSUM = re.compile(r"^[0-9a-f]{64}$")


class ImageCreateSerializer(serializers.Serializer):
    prompt = StrictCharField(min_length=1, max_length=2000)
    width = StrictIntegerField(min_value=MIN_SIZE, max_value=MAX_SIZE)
    height = StrictIntegerField(min_value=MIN_SIZE, max_value=MAX_SIZE)
    style = StrictCharField(max_length=64, required=False, allow_blank=True, allow_null=True, default="")
    # Billed one image.generate unit when the image completes; an account the caller may see.
    accountId = StrictIntegerField(
        min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True, default=None, source="account_id"
    )

    def validate_style(self, value: str | None) -> str:
        return value or ""


class ImageListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(
        choices=Image.Status.choices, required=False, help_text="Only images of this status."
    )


class ImageUpdateSerializer(serializers.Serializer):
    """PATCH by staff (the generator): a new status and, optionally, the result."""

    status = serializers.ChoiceField(
        choices=[Image.Status.RUNNING, Image.Status.COMPLETED, Image.Status.FAILED], allow_blank=False
    )
    resultUrl = StrictCharField(max_length=2000, required=False)
    bytes = StrictIntegerField(min_value=0, max_value=2**63 - 1, required=False)
    checksum = StrictCharField(min_length=64, max_length=64, required=False)
    failureReason = StrictCharField(max_length=1000, required=False, allow_blank=True)

    def validate_resultUrl(self, value: str) -> str:
        # A path on this server (our own results) or an http(s) URL elsewhere.
        if not value.startswith("/") or value.startswith("//"):
            URLValidator(schemes=["http", "https"], message="Enter an http(s) URL or a path.")(value)
        return value

    def validate_checksum(self, value: str) -> str:
        value = value.lower()
        if not CHECKSUM.match(value):
            raise serializers.ValidationError("Expected a SHA-256 digest: 64 hexadecimal characters.")
        return value


# --- answers (for the OpenAPI schema) ---------------------------------------------------------


class ImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ownerId = serializers.IntegerField()
    accountId = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=Image.Status.choices)
    prompt = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    style = serializers.CharField(allow_null=True)
    resultUrl = serializers.CharField(allow_null=True)
    bytes = serializers.IntegerField(allow_null=True)
    checksum = serializers.CharField(allow_null=True)
    failureReason = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    completedAt = serializers.DateTimeField(allow_null=True)


class CachedImageSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = ImageSerializer()


class ImagePageSerializer(serializers.Serializer):
    items = ImageSerializer(many=True, help_text="The caller's own images, newest first.")
    next = serializers.CharField(allow_null=True, help_text="The cursor of the following page; null on the last.")


class CachedImagePageSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = ImagePageSerializer()
