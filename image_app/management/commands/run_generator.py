"""``manage.py run_generator [--once]``: render queued images until stopped (see image_app/generator.py)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from image_app.generator import Generator


class Command(BaseCommand):
    help = "Render queued images. SIGTERM or Ctrl-C finishes (or hands back) the current job and exits."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="exit when the queue is empty")

    def handle(self, *args, once: bool = False, **options) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        done = Generator(stop=stop).run(once=once)
        self.stdout.write(f"Generated {done} image(s).")
