"""``manage.py run_generator [--once] [--check]``: render queued images until stopped (see image_app/generator.py)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from image_app import generator_lock
from image_app.generator import Generator


class Command(BaseCommand):
    help = "Render queued images. SIGTERM or Ctrl-C finishes (or hands back) the current job and exits."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="exit when the queue is empty")
        parser.add_argument(
            "--check",
            action="store_true",
            help="exit 0 if a generator may start here, or 1 saying why not (one already runs on this SQLite file)",
        )

    def handle(self, *args, once: bool = False, check: bool = False, **options) -> None:
        database = generator_lock.sqlite_database()
        lock = generator_lock.acquire(database) if database else None  # held until the command returns
        if database and lock is None:
            raise CommandError(generator_lock.refusal(database))
        if check:
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        done = Generator(stop=stop).run(once=once)
        self.stdout.write(f"Generated {done} image(s).")
