"""The demo data's stages: each app registers its own, and ``manage.py seed_demo`` runs them in order.

An app registers its stages in its ``AppConfig.ready()`` (``seeding.register(*STAGES)`` from its
``seeding`` module), so they run in INSTALLED_APPS order: auth_app's demo users first, then billing's
accounts and usage, then the other apps' rows that hang off those users.

``Stage(name, run, reset=None, options=(), check=None, after_commit=None, note=None)``
    ``run(ctx) -> str`` creates the stage's rows and returns a phrase for the summary line
    ("1,200 images"). ``reset(ctx)`` deletes what the stage created in earlier runs (``--reset``
    calls the resets in reverse order, before any stage runs; rows that cascade from the demo users
    need none). ``options`` are the stage's command-line options, ``StageOption("--images", 500,
    "images to create")``, read back with ``ctx.option("images")``; an integer option must not be
    negative, a boolean one is a flag. ``check(options)`` refuses a combination of options with a
    ``CommandError`` before anything runs. ``after_commit(ctx)`` runs once the data is committed
    (statistics, VACUUM). ``note(ctx)`` adds a phrase to the summary line ("large accounts: 1").

``SeedContext`` gives a stage ``ctx.rng(name)`` (a ``random.Random`` seeded from ``--seed`` and the
stage's name, so adding a stage never changes another's data), ``ctx.users`` (the demo users, staff
excluded, saved, in creation order), ``ctx.staff``, ``ctx.shared`` (what a stage hands to later ones),
``ctx.demo_users()`` (a queryset, for resets), ``ctx.now`` (``--now``, default the current hour:
generate times up to it, so that a run is reproducible), ``ctx.batch_size``,
``ctx.progress(total=, desc=, unit=)`` (a tqdm bar, silent at --verbosity 0) and ``ctx.log(msg)``.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

DEMO_DOMAIN = "demo.techbirdsfly.local"
DEMO_PASSWORD = "techbirdsfly-demo"  # noqa: S105  (published on purpose: the demo login)
STAFF_EMAIL = f"staff@{DEMO_DOMAIN}"
ACTIVITY_DAYS = 90  # usage spans the last 90 days (three months of invoices and a current month); users joined before


def demo_email(index: int) -> str:
    return f"user{index:05d}@{DEMO_DOMAIN}"


@dataclass(frozen=True)
class StageOption:
    flag: str  # "--images"
    default: int | bool  # a bool makes the option a flag (store_true)
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[SeedContext], str]
    reset: Callable[[SeedContext], None] | None = None
    options: tuple[StageOption, ...] = ()
    check: Callable[[dict[str, Any]], None] | None = None
    after_commit: Callable[[SeedContext], None] | None = None
    note: Callable[[SeedContext], str] | None = None


@dataclass
class SeedContext:
    options: dict[str, Any]
    now: datetime
    quiet: bool = False
    stdout: Any = None
    users: list[Any] = field(default_factory=list)
    staff: Any = None
    shared: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        return self.options[name]

    @property
    def batch_size(self) -> int:
        return self.options["batch_size"]

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.options['seed']}:{name}")

    def demo_users(self) -> QuerySet:
        return get_user_model().objects.filter(email__endswith=f"@{DEMO_DOMAIN}")

    def progress(self, *, total: int, desc: str, unit: str = "rows") -> Any:
        from tqdm import tqdm  # only the command needs it, not every process that loads the apps

        return tqdm(
            total=total, desc=f"{desc:<10}", unit=f" {unit}", unit_scale=True, disable=self.quiet, file=sys.stderr
        )

    def log(self, message: str) -> None:
        if self.stdout is not None and not self.quiet:
            self.stdout.write(message)


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_stages: dict[str, Stage] = {}


def register(*stages: Stage) -> None:
    """Add stages after those registered so far; a stage registered again keeps its place."""
    for stage in stages:
        _stages[stage.name] = stage


def unregister(name: str) -> None:
    _stages.pop(name, None)


def registered() -> list[Stage]:
    return list(_stages.values())
