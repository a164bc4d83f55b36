"""``python manage.py seed_demo``: realistic demo data, fast, the same for the same ``--seed``.

Demo users (``user00000@demo.techbirdsfly.local`` ... and ``staff@demo.techbirdsfly.local``)
share one password; every app adds its rows through the stages it registers (techbirdsfly/seeding.py).
Everything runs in one transaction, so a failed run leaves nothing behind. A second run finds the
demo users and does nothing unless given ``--reset``, which deletes the demo data first.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from techbirdsfly.seeding import DEMO_PASSWORD, STAFF_EMAIL, SeedContext, Stage, demo_email, registered


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Command(BaseCommand):
    help = "Create demo users, accounts, usage and invoices (reproducible with --seed; --reset to recreate)."

    def add_arguments(self, parser: CommandParser) -> None:
        for stage in registered():
            for option in stage.options:
                if isinstance(option.default, bool):
                    parser.add_argument(option.flag, action="store_true", help=option.help)
                else:
                    parser.add_argument(option.flag, type=int, default=option.default, help=option.help)
        parser.add_argument("--seed", type=int, default=42, help="random seed: the same seed, the same data")
        parser.add_argument("--batch-size", type=int, default=10_000, help="rows per INSERT or COPY write")
        parser.add_argument(
            "--now",
            type=_moment,
            default=None,
            help="the reference time, ISO 8601 (default: the current hour); usage ends here",
        )
        parser.add_argument("--reset", action="store_true", help="delete the demo data first, then create it anew")

    def handle(self, *args: Any, **options: Any) -> None:
        stages = registered()
        self._check(options, stages)
        began = time.monotonic()
        ctx = SeedContext(
            options=options,
            # Whole hours, so that two runs with one seed within the hour create identical rows.
            now=options["now"] or timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0),
            quiet=options["verbosity"] == 0,
            stdout=self.stdout,
        )
        with transaction.atomic():
            if options["reset"]:
                self._reset(ctx, stages)
            elif ctx.demo_users().exists():
                self.stdout.write(
                    f"Demo data already present ({ctx.demo_users().count():,} demo users); nothing done. "
                    "Use --reset to recreate it."
                )
                return
            results = [self._run(ctx, stage) for stage in stages]
            committing = time.monotonic()
        ctx.log(f"commit: {time.monotonic() - committing:.1f}s")
        for stage in stages:
            if stage.after_commit:
                stage.after_commit(ctx)
        notes = "".join(f"{stage.note(ctx)}; " for stage in stages if stage.note)
        self.stdout.write(
            f"seed_demo: {'; '.join(results)} in {time.monotonic() - began:.1f}s (seed {options['seed']}); "
            f"{notes}log in as {demo_email(0)} / {DEMO_PASSWORD} (staff: {STAFF_EMAIL})"
        )

    def _run(self, ctx: SeedContext, stage: Stage) -> str:
        started = time.monotonic()
        result = stage.run(ctx)
        ctx.log(f"{stage.name}: {result} in {time.monotonic() - started:.1f}s")
        return result

    def _check(self, options: dict[str, Any], stages: list[Stage]) -> None:
        for stage in stages:
            for option in stage.options:
                if not isinstance(option.default, bool) and options[option.dest] < 0:
                    raise CommandError(f"{option.flag} must not be negative")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        for stage in stages:
            if stage.check:
                stage.check(options)

    def _reset(self, ctx: SeedContext, stages: list[Stage]) -> None:
        # Deleted rows' cached reads are invalidated by each app's signals and querysets (cache.py).
        doomed = ctx.demo_users().count()
        started = time.monotonic()
        for stage in reversed(stages):
            if stage.reset:
                stage.reset(ctx)
        ctx.log(f"Deleted the previous demo data ({doomed:,} demo users) in {time.monotonic() - started:.1f}s")
