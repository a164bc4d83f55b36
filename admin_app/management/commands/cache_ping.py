from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from techbirdsfly.cache import APPS, ping, server_info
from techbirdsfly.cache.calls import breaker_for


class Command(BaseCommand):
    help = "PING the Redis of every cache app; exits non-zero when one does not answer."

    def handle(self, *args, **options) -> None:
        by_location: dict[str, list[str]] = {}
        for app in APPS:
            by_location.setdefault(str(settings.CACHES[app]["LOCATION"]), []).append(app)
        down = []
        for apps in by_location.values():
            app = apps[0]
            where = breaker_for(app).name  # the location with any password masked
            start = time.perf_counter()
            up = ping(app)
            elapsed = (time.perf_counter() - start) * 1000
            if up:
                info = server_info(app) or {}
                self.stdout.write(
                    self.style.SUCCESS(f"PONG from {where} in {elapsed:.1f} ms")
                    + f" (Redis {info.get('version', '?')}; apps: {', '.join(apps)})"
                )
            else:
                down.append(where)
                self.stdout.write(
                    self.style.ERROR(f"no answer from {where} after {elapsed:.1f} ms (apps: {', '.join(apps)})")
                )
        if down:
            raise CommandError(f"Redis unavailable at {', '.join(down)}; the apps serve from the database meanwhile.")
