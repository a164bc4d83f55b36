from __future__ import annotations

from rest_framework import serializers

from .key_pages import PageCursor


class KeysQuerySerializer(serializers.Serializer):
    match = serializers.CharField(required=False, default="*", max_length=200, trim_whitespace=False)
    count = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)
    # ASCII and bounded, so that a request line with the longest match and cursor stays under the
    # 4 KB gunicorn reads (longer is refused with gunicorn's own HTML 414; found by the schema fuzzer).
    cursor = serializers.RegexField(
        r"^[0-9A-Za-z._-]{1,1000}$",
        required=False,
        default="0",
        help_text='The cursor the previous page returned; "0" to start.',
    )

    def validate_cursor(self, value: str) -> str:
        try:
            PageCursor.decode(value)
        except ValueError:
            raise serializers.ValidationError("Not a cursor this listing returned; start with 0.") from None
        return value


class KeySerializer(serializers.Serializer):
    key = serializers.CharField()
    ttl = serializers.IntegerField()


class KeysPageSerializer(serializers.Serializer):
    app = serializers.CharField()
    keys = KeySerializer(many=True)
    cursor = serializers.CharField(help_text='Pass it back as ?cursor= for the next page; "0" on the last page.')


class ClearedSerializer(serializers.Serializer):
    app = serializers.CharField()
    deleted = serializers.IntegerField()


class AppStatsSerializer(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    errors = serializers.IntegerField()
    computes = serializers.IntegerField(help_text="values computed from the database to fill the cache")
    hitRatio = serializers.FloatField()
    keys = serializers.IntegerField(allow_null=True, help_text="null when Redis is down")
    memoryBytes = serializers.IntegerField(allow_null=True, help_text="estimated from a sample of keys")


class RedisStatsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["up", "down"])
    version = serializers.CharField(allow_null=True)
    usedMemory = serializers.IntegerField(allow_null=True)
    maxmemory = serializers.IntegerField(allow_null=True)
    maxmemoryPolicy = serializers.CharField(allow_null=True)


class CacheStatsSerializer(serializers.Serializer):
    apps = serializers.DictField(child=AppStatsSerializer())
    redis = RedisStatsSerializer()


class DashboardSerializer(serializers.Serializer):
    users = serializers.DictField(child=serializers.IntegerField(), help_text="{total, newLast24h}")
    accounts = serializers.DictField(child=serializers.IntegerField(), help_text="{total}")
    billing = serializers.DictField(
        child=serializers.CharField(), help_text="{totalInvoiced, totalPaid, outstanding}: money strings"
    )
    usage = serializers.DictField(help_text="{unitsLast24h, byMetric: {metric: units}}")
    images = serializers.DictField(help_text="{total, byStatus: {status: count}}")
    computedAt = serializers.DateTimeField()


class CachedDashboardSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = DashboardSerializer(help_text="Aggregates, cached without invalidation: up to 5 minutes old.")
