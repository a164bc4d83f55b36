from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from admin_app.selectors import app_footprint
from admin_app.services import cache_app_clear
from techbirdsfly.cache import APPS
from techbirdsfly.cache.calls import CacheUnavailable

from ._common import app_argument, redis_down


class Command(BaseCommand):
    help = "Delete every key of one app (SCAN + UNLINK); other apps' keys stay. Asks first unless --yes."

    def add_arguments(self, parser) -> None:
        app_argument(parser)
        parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, app: str, yes: bool, **options) -> None:
        pattern = f"{APPS[app]}_*"
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError(f"refusing to clear {pattern} without confirmation: run with --yes")
            try:
                keys = app_footprint(app=app, sample=0).keys
            except CacheUnavailable:
                raise redis_down() from None
            answer = input(f"Delete the {keys} key(s) matching {pattern}? Other apps' keys stay. [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("cancelled; nothing was deleted")
        try:
            deleted = cache_app_clear(app=app, actor=f"manage.py cache_clear ({getpass.getuser()})")
        except CacheUnavailable:
            raise redis_down() from None
        self.stdout.write(self.style.SUCCESS(f"deleted {deleted} key(s) of {app} ({pattern})"))
