from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from admin_app.selectors import cache_keys_page
from techbirdsfly.cache import APPS
from techbirdsfly.cache.calls import CacheUnavailable

from ._common import app_argument, redis_down


class Command(BaseCommand):
    help = "List an app's keys with their TTL, walking with SCAN (never KEYS)."

    def add_arguments(self, parser) -> None:
        app_argument(parser)
        parser.add_argument("--match", default="*", help="glob on the part after the app's prefix (default *)")
        parser.add_argument("--count", type=int, default=100, help="keys per page fetched, 1..1000 (default 100)")
        parser.add_argument("--limit", type=int, default=None, help="stop after this many keys")

    def handle(self, *args, app: str, match: str, count: int, limit: int | None, **options) -> None:
        if not 1 <= count <= 1000:
            raise CommandError("--count must be between 1 and 1000")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        listed, cursor = 0, "0"
        self.stdout.write(f"{'ttl':>8}  key")
        try:
            while limit is None or listed < limit:
                page = cache_keys_page(app=app, match=match, count=count, cursor=cursor)
                for entry in page["keys"][: None if limit is None else limit - listed]:
                    ttl = "none" if entry["ttl"] < 0 else f"{entry['ttl']}s"
                    self.stdout.write(f"{ttl:>8}  {entry['key']}")
                    listed += 1
                cursor = page["cursor"]
                if cursor == "0":
                    break
        except CacheUnavailable:
            raise redis_down() from None
        more = " (stopped at --limit)" if cursor != "0" and limit is not None else ""
        self.stdout.write(f"{listed} key(s) of {app} matching {APPS[app]}_{match}{more}")
