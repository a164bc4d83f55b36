"""Reads of the admin app: cache statistics, key listings and the dashboard's analytics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple, TypedDict

from django.db.models import Count, Q, Sum
from django.utils import timezone

from auth_app.models import User
from billing_app.aggregates import MoneySum
from billing_app.models import Account, Invoice, Price, UsageRecord
from billing_app.money import cents, iso
from image_app.models import Image
from techbirdsfly.cache import APPS, Cached, cache_counts, cluster, get_or_compute, server_info
from techbirdsfly.cache.calls import CacheUnavailable, cache_for, redis_call
from techbirdsfly.cache.ops import app_pattern

from . import cache
from .cache import APP
from .key_pages import PageCursor, keys_page

# Memory is measured on this many keys per app and scaled to the app's key count: MEMORY USAGE on
# every key would make each dashboard refresh cost as much Redis work as there are keys.
MEMORY_SAMPLE = 200


class AppStats(TypedDict):
    hits: int
    misses: int
    errors: int
    computes: int
    hitRatio: float
    keys: int | None
    memoryBytes: int | None


class Footprint(NamedTuple):
    keys: int
    memory_bytes: int
    sampled: int


def app_footprint(*, app: str, sample: int = MEMORY_SAMPLE) -> Footprint:
    """Count ``app``'s keys with SCAN and estimate their memory from the first ``sample`` of them.

    Raises CacheUnavailable when Redis cannot be reached.
    """

    def walk() -> Footprint:
        client = cache_for(app).client.get_client(write=False)
        keys, sampled, sampled_bytes = 0, 0, 0
        cursor = 0
        while True:
            cursor, batch = cluster.scan_page(client, cursor=cursor, match=app_pattern(app), count=1000)
            keys += len(batch)
            measure = batch[: max(sample - sampled, 0)]
            if measure:
                pipe = client.pipeline(transaction=False)
                for key in measure:
                    pipe.memory_usage(key)
                # A key that expired between SCAN and MEMORY USAGE answers None.
                sizes = [size for size in pipe.execute() if size is not None]
                sampled += len(sizes)
                sampled_bytes += sum(sizes)
            if int(cursor) == 0:
                break
        estimate = round(sampled_bytes / sampled * keys) if sampled else 0
        return Footprint(keys, estimate, sampled)

    return redis_call(app, walk)


def cache_stats() -> dict[str, Any]:
    """Per-app counters (summed over every server process), key counts and the Redis server's memory."""
    counts = cache_counts()
    # server_info spends one call on a dead Redis; the breaker then skips the footprints instead of
    # each of them failing (and counting an error) again.
    info = server_info(APP)
    apps: dict[str, AppStats] = {}
    for app in APPS:
        hits, misses = counts[app]["hits"], counts[app]["misses"]
        footprint = None
        if info is not None:
            try:
                footprint = app_footprint(app=app)
            except CacheUnavailable:
                info = None
        apps[app] = AppStats(
            hits=hits,
            misses=misses,
            errors=counts[app]["errors"],
            computes=counts[app].get("computes", 0),
            hitRatio=round(hits / (hits + misses), 4) if hits + misses else 0.0,
            keys=footprint.keys if footprint else None,
            memoryBytes=footprint.memory_bytes if footprint else None,
        )
    redis: dict[str, Any] = {"status": "up" if info is not None else "down"}
    redis.update(info or {"version": None, "usedMemory": None, "maxmemory": None, "maxmemoryPolicy": None})
    return {"apps": apps, "redis": redis}


def cache_keys_page(*, app: str, match: str = "*", count: int = 100, cursor: str = "0") -> dict[str, Any]:
    """One page of ``app``'s keys (up to ``count``; never empty but the last), in the shape of the key listing.

    ``cursor`` is the one the previous page returned; ValueError for any other string. Raises
    CacheUnavailable when Redis cannot be reached.
    """
    keys, next_cursor = keys_page(app, match=match, count=count, cursor=PageCursor.decode(cursor))
    return {"app": app, "keys": [{"key": key, "ttl": ttl} for key, ttl in keys], "cursor": next_cursor.encode()}


# --- dashboard analytics -------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    # One aggregate query per table; no rows are loaded.
    now = timezone.now()
    since = now - timedelta(hours=24)
    users = User.objects.aggregate(total=Count("id"), new=Count("id", filter=Q(date_joined__gte=since)))
    invoices = Invoice.objects.aggregate(
        invoiced=MoneySum("amount"),
        paid=MoneySum("amount", filter=Q(status=Invoice.Status.PAID)),
        open=MoneySum("amount", filter=Q(status=Invoice.Status.OPEN)),
    )
    # Every metric of the price list and every status appear, with 0 when there is none.
    by_metric = dict.fromkeys(Price.objects.values_list("metric", flat=True), 0)
    usage = UsageRecord.objects.filter(recorded_at__gte=since).values("metric").annotate(units=Sum("units"))
    by_metric.update({row["metric"]: int(row["units"]) for row in usage.order_by()})
    by_status = dict.fromkeys(Image.Status.values, 0)
    images = Image.objects.values("status").annotate(n=Count("id")).order_by()
    by_status.update({row["status"]: row["n"] for row in images})
    return {
        "users": {"total": users["total"], "newLast24h": users["new"]},
        "accounts": {"total": Account.objects.count()},
        "billing": {
            "totalInvoiced": cents(invoices["invoiced"]),
            "totalPaid": cents(invoices["paid"]),
            "outstanding": cents(invoices["open"]),
        },
        "usage": {"unitsLast24h": sum(by_metric.values()), "byMetric": by_metric},
        "images": {"total": sum(by_status.values()), "byStatus": by_status},
        "computedAt": iso(now),
    }


def dashboard_analytics() -> Cached[dict[str, Any]]:
    """Site-wide aggregates for staff, cached without a scope: up to 5 minutes old (cache.py)."""
    return get_or_compute(cache.DASHBOARD, cache.dashboard_key(), _dashboard)


def dashboard_snapshot() -> dict[str, Any]:
    """Everything the /dashboard/ page shows, in one JSON document."""
    analytics = dashboard_analytics()
    return {
        "analytics": {"fromCache": analytics.from_cache, "data": analytics.value},
        "cache": cache_stats(),
    }
