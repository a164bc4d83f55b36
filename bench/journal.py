"""What the invalidation journal costs: ``python -m bench.journal``.

Prints, measured side by side in one run against a private redis-server and PostgreSQL
(BENCH_DATABASE_URL, default database tbf_journal_bench, migrated here):

- a write's invalidation: ``invalidate`` inside a transaction (journal row + post-commit generation)
  against the same transaction writing only the Redis generation, as before the journal;
- a cache hit: CPU per ``get_or_compute`` hit of a scoped entry (the read path's checks: key,
  expiry, generation, journal floor) in alternating rounds with a plain django-redis ``get_many``
  of the same two keys through the same signed serializer;
- the catch-up of 100,000 journal rows: what a process does before its first read (``--rows``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def bench_writes(n: int) -> dict[str, float]:
    """A real write (one UPDATE of a user row, committed) with its invalidation, both ways."""
    from django.db import transaction

    from auth_app.models import User
    from techbirdsfly.cache import generations, invalidate
    from techbirdsfly.cache.calls import cache_for

    user, _ = User.objects.get_or_create(email="journal-bench@example.com", defaults={"name": "bench"})
    cache = cache_for("billing")

    def journaled(i: int) -> None:
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(name=f"bench {i}")
            invalidate("billing", f"billing:account:bench-{i}")

    def redis_only(i: int) -> None:
        # The pre-journal write path: the same UPDATE, a mark, commit, a new generation; no row.
        scope = f"billing:account:bench-{i}"
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(name=f"bench {i}")
            generations._mark_being_written("billing", [scope])
            transaction.on_commit(lambda: cache.set(f"{scope}:gen", generations.new_generation(0, ""), timeout=60))

    rounds: dict[str, list[float]] = {"journal": [], "redis_only": []}
    for r in range(10):
        for name, fn in (("journal", journaled), ("redis_only", redis_only)):
            began = time.perf_counter()
            for i in range(n // 10):
                fn(r * n + i)
            rounds[name].append((time.perf_counter() - began) / (n // 10))
    return {name: _median_us(values) for name, values in rounds.items()}


def bench_hits(n: int) -> dict[str, float]:
    from techbirdsfly.cache import get_or_compute

    value = {"accountId": 1, "name": "bench", "totalUsageUnits": 123456, "unbilledAmount": "12.34"}
    from bench.views import plain_get_many

    key, scope = "billing:summary:bench", "billing:account:bench-hit"
    get_or_compute("billing.summary", key, lambda: value, scope=scope)
    assert get_or_compute("billing.summary", key, lambda: value, scope=scope).from_cache

    def layer_hit() -> None:
        get_or_compute("billing.summary", key, lambda: value, scope=scope)

    def plain_hit() -> None:
        plain_get_many("billing", [key], [f"{scope}:gen"])

    rounds: dict[str, list[float]] = {"layer": [], "plain_get_many": []}
    for _ in range(10):
        for name, fn in (("layer", layer_hit), ("plain_get_many", plain_hit)):
            began = time.process_time()
            for _ in range(n // 10):
                fn()
            rounds[name].append((time.process_time() - began) / (n // 10))
    return {name: _median_us(values) for name, values in rounds.items()}


def bench_catch_up(rows: int) -> dict[str, float]:
    from django.db import connection

    from techbirdsfly.cache import journal
    from techbirdsfly.models import CacheJournal

    CacheJournal.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO techbirdsfly_cachejournal (app, scope, created_at) "
            "SELECT 'billing', 'billing:account:' || g, now() FROM generate_series(1, %s) AS g",
            [rows],
        )
    timings = []
    for _ in range(3):
        journal.reset()
        began = time.perf_counter()
        assert journal.catch_up()
        timings.append(time.perf_counter() - began)
    assert len(journal._index.latest) >= rows
    CacheJournal.objects.all().delete()
    return {"seconds": statistics.median(timings), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--hits", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)

    from .data import ensure_database
    from .servers import own_environment

    database, port = own_environment("tbf_journal_bench", DJANGO_DEBUG="1", DJANGO_LOG_LEVEL="ERROR")
    from techbirdsfly.testing import RedisServer  # once the settings module is named

    redis_server = RedisServer(port).start()
    try:
        ensure_database(database)
        _setup()
        print("invalidation journal (issue 13)", flush=True)
        writes = bench_writes(args.writes)
        print(
            f"  a committed UPDATE with one invalidation: {writes['journal']:.0f} µs with the journal row, "
            f"{writes['redis_only']:.0f} µs Redis only (+{writes['journal'] - writes['redis_only']:.0f} µs)",
            flush=True,
        )
        hits = bench_hits(args.hits)
        print(
            f"  hit CPU: {hits['layer']:.1f} µs get_or_compute, {hits['plain_get_many']:.1f} µs plain get_many "
            f"of the same keys ({hits['layer'] / hits['plain_get_many']:.2f}x)",
            flush=True,
        )
        catch_up = bench_catch_up(args.rows)
        print(f"  catch-up of {catch_up['rows']:,} rows: {catch_up['seconds']:.2f} s", flush=True)
    finally:
        redis_server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
