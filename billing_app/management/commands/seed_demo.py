"""``python manage.py seed_demo``: realistic demo data, fast, the same for the same ``--seed``.

Demo users (``user00000@demo.techbirdsfly.local`` ... and ``staff@demo.techbirdsfly.local``)
share one password; accounts, skewed usage (a few very large accounts, a long tail of small ones)
and monthly invoices (older ones paid) are generated in bulk: usage goes in with PostgreSQL's COPY.
Everything runs in one transaction, so a failed run leaves nothing behind. A second run finds the
demo users and does nothing unless given ``--reset``, which deletes the demo data first.

Stages
------
The work is a list of stages, run in order; other apps add theirs without touching this file.

``Stage(name, run, reset=None, options=())``
    ``run(ctx: SeedContext) -> str`` creates the stage's rows and returns a phrase for the summary
    line ("1,200 images"). ``reset(ctx) -> None`` deletes what the stage created in earlier runs
    (``--reset`` calls the resets in reverse order, before any stage runs; rows that cascade from
    the demo users need none). ``options`` are extra integer command-line options,
    ``StageOption("--images", 500, "images to create")``, read back with ``ctx.option("images")``.

Where stages come from: ``STAGES`` below (users, accounts, usage with invoices), then the ``STAGES``
list of every installed app's ``seeding`` module (``image_app/seeding.py``), in INSTALLED_APPS order.

``SeedContext`` gives a stage ``ctx.rng(name)`` (a ``random.Random`` seeded from ``--seed`` and the
stage's name, so adding a stage never changes another's data), ``ctx.users`` (the demo users,
staff excluded, saved, in creation order), ``ctx.staff``, ``ctx.accounts``, ``ctx.large_accounts``,
``ctx.demo_users()`` (a queryset, for resets), ``ctx.now`` (``--now``, default the current hour:
generate times up to it, so that a run is reproducible), ``ctx.batch_size``,
``ctx.progress(total=, desc=, unit=)`` (a tqdm bar, silent at --verbosity 0) and ``ctx.log(msg)``.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from tqdm import tqdm

from billing_app.models import MAX_UNITS, Account, Invoice, Price, UsageRecord
from billing_app.money import month_start, next_month, to_cents

DEMO_DOMAIN = "demo.techbirdsfly.local"
DEMO_PASSWORD = "techbirdsfly-demo"  # noqa: S105  (published on purpose: the demo login)
STAFF_EMAIL = f"staff@{DEMO_DOMAIN}"
USAGE_DAYS = 90  # usage spans the last 90 days, so three months of invoices and a current month


def demo_email(index: int) -> str:
    return f"user{index:05d}@{DEMO_DOMAIN}"


# --- the stage interface -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageOption:
    flag: str  # "--images"
    default: int
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


@dataclass
class SeedContext:
    options: dict[str, Any]
    now: datetime
    quiet: bool = False
    stdout: Any = None
    users: list[Any] = field(default_factory=list)
    staff: Any = None
    accounts: list[Account] = field(default_factory=list)
    large_accounts: list[Account] = field(default_factory=list)

    def option(self, name: str) -> Any:
        return self.options[name]

    @property
    def batch_size(self) -> int:
        return self.options["batch_size"]

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.options['seed']}:{name}")

    def demo_users(self) -> QuerySet:
        return get_user_model().objects.filter(email__endswith=f"@{DEMO_DOMAIN}")

    def progress(self, *, total: int, desc: str, unit: str = "rows") -> tqdm:
        return tqdm(
            total=total, desc=f"{desc:<10}", unit=f" {unit}", unit_scale=True, disable=self.quiet, file=sys.stderr
        )

    def log(self, message: str) -> None:
        if self.stdout is not None and not self.quiet:
            self.stdout.write(message)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- users ---------------------------------------------------------------------------------------

_FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia")
_LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Perlman")


def seed_users(ctx: SeedContext) -> str:
    User = get_user_model()
    rng = ctx.rng("users")
    # Hashing is deliberately slow: hash the one demo password once and give every user that hash.
    password = make_password(DEMO_PASSWORD)
    count = ctx.option("users")
    users = [
        User(
            email=demo_email(i),
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            password=password,
            date_joined=ctx.now - timedelta(days=USAGE_DAYS + rng.randint(1, 365)),
        )
        for i in range(count)
    ]
    staff = User(email=STAFF_EMAIL, name="Demo Staff", password=password, is_staff=True, date_joined=ctx.now)
    with ctx.progress(total=count + 1, desc="users") as bar:
        for batch in _batches([*users, staff], ctx.batch_size):
            User.objects.bulk_create(batch)
            bar.update(len(batch))
    ctx.users, ctx.staff = users, staff
    return f"{count:,} users (+1 staff)"


def reset_users(ctx: SeedContext) -> None:
    ctx.demo_users().delete()  # cascades to whatever other apps hang on a user


# --- accounts ------------------------------------------------------------------------------------

_COMPANY = ("Falcon", "Heron", "Osprey", "Kestrel", "Swift", "Wren", "Puffin", "Condor", "Raven", "Tern", "Egret")
_KIND = ("Labs", "Studio", "Analytics", "Media", "Robotics", "Foods", "Travel", "Health", "Games", "Logistics")
_PLAN_WEIGHTS = ((Account.Plan.FREE, 60), (Account.Plan.PRO, 30), (Account.Plan.ENTERPRISE, 10))


def seed_accounts(ctx: SeedContext) -> str:
    count = ctx.option("accounts")
    if count and not ctx.users:
        raise CommandError("accounts need owners: --users must be at least 1")
    rng = ctx.rng("accounts")
    plans, weights = zip(*_PLAN_WEIGHTS, strict=True)
    large = ctx.option("large_accounts")
    accounts = []
    for i in range(count):
        # Every user owns at least one account while there are enough; the rest go to random owners.
        owner = ctx.users[i] if i < len(ctx.users) else rng.choice(ctx.users)
        # The large accounts are enterprise customers (and the demo login owns the first one).
        plan = Account.Plan.ENTERPRISE if i < large else rng.choices(plans, weights)[0]
        accounts.append(
            Account(
                owner_id=owner.pk,
                name=f"{rng.choice(_COMPANY)} {rng.choice(_KIND)} {i}",
                plan=plan,
                currency="USD",
                created_at=ctx.now - timedelta(days=USAGE_DAYS + rng.randint(1, 200)),
            )
        )
    with ctx.progress(total=count, desc="accounts") as bar:
        for batch in _batches(accounts, ctx.batch_size):
            Account.objects.bulk_create(batch)
            bar.update(len(batch))
    ctx.accounts, ctx.large_accounts = accounts, accounts[:large]
    return f"{count:,} accounts ({large} large)"


def reset_accounts(ctx: SeedContext) -> None:
    Account.objects.filter(owner__in=ctx.demo_users()).delete()


# --- usage and invoices ---------------------------------------------------------------------------
# One stage: each usage row goes in already on its invoice, which is much faster than billing the
# rows afterwards (an UPDATE of most of a million rows). Invoices are monthly, for every month
# before the current one, for about half the accounts (all large ones); older months are paid.

# Share of records per metric, and how many units one record carries.
_METRIC_WEIGHTS = {"api.call": 75, "storage.gb_day": 15, "image.generate": 10}

Row = tuple[
    int, str, int, int, datetime, int | None
]  # account, metric, units, amount in 1/10000 dollar, recorded_at, invoice


def _units(metric: str, rng: random.Random) -> int:
    if metric == "image.generate":
        return rng.randint(1, 8)
    if metric == "storage.gb_day":
        return min(max(int(rng.lognormvariate(2.5, 1.0)), 1), MAX_UNITS)
    return min(max(int(rng.lognormvariate(3.0, 1.3)), 1), MAX_UNITS)  # api.call: median ~20, long tail


def _records_per_account(ctx: SeedContext, rng: random.Random) -> dict[int, int]:
    """Exact record counts: ``--large-account-usage`` for each large account, the rest Zipf-skewed."""
    total = ctx.option("usage")
    large, per_large = ctx.large_accounts, ctx.option("large_account_usage")
    counts = {account.pk: per_large for account in large}
    rest = total - per_large * len(large)
    tail = [account.pk for account in ctx.accounts[len(large) :]]
    if not tail:
        # Only large accounts: they share what is left over evenly.
        for i, account in enumerate(large):
            counts[account.pk] += rest // len(large) + (1 if i < rest % len(large) else 0)
        return counts
    rng.shuffle(tail)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(tail))]
    scale = rest / sum(weights)
    shares = [int(w * scale) for w in weights]
    for i in range(rest - sum(shares)):  # rounding leftovers go to the biggest customers
        shares[i % len(shares)] += 1
    counts.update(zip(tail, shares, strict=True))
    return counts


def _invoice_shells(ctx: SeedContext, account_ids: list[int], first: datetime) -> dict[tuple[int, int, int], Invoice]:
    """Saved invoices (amount still 0) keyed by (account id, year, month), one per billed account and month."""
    rng = ctx.rng("invoices")
    this_month = month_start(ctx.now)
    last_complete = month_start(this_month - timedelta(days=1))
    large = {account.pk for account in ctx.large_accounts}
    shells: dict[tuple[int, int, int], Invoice] = {}
    for account_id in account_ids:
        if account_id not in large and rng.random() >= 0.5:
            continue
        month = month_start(first)
        while month < this_month:
            issued = min(next_month(month) + timedelta(days=1, hours=rng.randint(0, 23)), ctx.now)
            # Older months are paid; the last complete month by about half the customers, and not
            # yet by the large ones (enterprise terms), so the demo login has a balance to show.
            paid = month < last_complete or (account_id not in large and rng.random() < 0.5)
            shells[(account_id, month.year, month.month)] = Invoice(
                account_id=account_id,
                amount=0,
                status=Invoice.Status.PAID if paid else Invoice.Status.OPEN,
                issued_at=issued,
                paid_at=min(issued + timedelta(days=rng.randint(1, 20)), ctx.now) if paid else None,
            )
            month = next_month(month)
    invoices = list(shells.values())
    for batch in _batches(invoices, ctx.batch_size):
        Invoice._base_manager.bulk_create(batch)
    return shells


def _usage_rows(ctx: SeedContext, rng: random.Random, totals: dict[int, int]) -> Iterator[Row]:
    """The usage rows, oldest first; adds each billed row's amount to ``totals[invoice id]``.

    Everything that queries the database happens before the first row is generated: the rows are
    consumed while a COPY holds the connection.
    """
    counts = _records_per_account(ctx, rng)
    order = [account_id for account_id, n in counts.items() for _ in range(n)]
    rng.shuffle(order)
    prices = {p.metric: int(p.unit_price * 10_000) for p in Price.objects.all()}
    missing = set(_METRIC_WEIGHTS) - set(prices)
    if missing:
        raise CommandError(f"the price list lacks {', '.join(sorted(missing))}; run migrate first")
    metrics = list(_METRIC_WEIGHTS)
    # Each account has its own mix of metrics around the overall one.
    mixes: dict[int, list[float]] = {}
    for account_id in counts:
        running, cumulative = 0.0, []
        for m in metrics:
            running += _METRIC_WEIGHTS[m] * rng.uniform(0.2, 1.8)
            cumulative.append(running)
        mixes[account_id] = cumulative
    start = ctx.now - timedelta(days=USAGE_DAYS)
    shells = _invoice_shells(ctx, [a for a, n in counts.items() if n], start)
    invoice_of = {key: invoice.pk for key, invoice in shells.items()}
    step = (ctx.now - start).total_seconds() / max(len(order), 1)
    base = start.timestamp()

    def rows() -> Iterator[Row]:
        for i, account_id in enumerate(order):
            metric = rng.choices(metrics, cum_weights=mixes[account_id])[0]
            units = _units(metric, rng)
            amount = units * prices[metric]
            moment = datetime.fromtimestamp(base + (i + rng.random()) * step, UTC)
            invoice_id = invoice_of.get((account_id, moment.year, moment.month))
            if invoice_id is not None:
                totals[invoice_id] = totals.get(invoice_id, 0) + amount
            yield account_id, metric, units, amount, moment, invoice_id

    return rows()


def _copy_usage(rows: Iterator[Row], total: int, ctx: SeedContext) -> None:
    """PostgreSQL's COPY: several times faster than multi-row INSERTs for a million rows."""
    meta = UsageRecord._meta
    fields = ("account", "metric", "units", "amount", "recorded_at", "invoice")
    statement = f"COPY {meta.db_table} ({', '.join(meta.get_field(f).column for f in fields)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy, ctx.progress(total=total, desc="usage") as bar:
        lines: list[str] = []
        for account_id, metric, units, amount, moment, invoice_id in rows:
            invoice = "\\N" if invoice_id is None else invoice_id
            lines.append(
                f"{account_id}\t{metric}\t{units}\t{amount // 10_000}.{amount % 10_000:04d}\t{moment}\t{invoice}\n"
            )
            if len(lines) >= ctx.batch_size:
                copy.write("".join(lines))
                bar.update(len(lines))
                lines = []
        copy.write("".join(lines))
        bar.update(len(lines))


def _insert_usage(rows: Iterator[Row], total: int, ctx: SeedContext) -> None:
    """Any other database (or --no-copy): multi-row INSERTs."""
    with ctx.progress(total=total, desc="usage") as bar:
        batch: list[UsageRecord] = []
        for account_id, metric, units, amount, moment, invoice_id in rows:
            batch.append(
                UsageRecord(
                    account_id=account_id,
                    metric_id=metric,
                    units=units,
                    amount=Decimal(amount).scaleb(-4),
                    recorded_at=moment,
                    invoice_id=invoice_id,
                )
            )
            if len(batch) >= ctx.batch_size:
                UsageRecord._base_manager.bulk_create(batch)
                bar.update(len(batch))
                batch = []
        UsageRecord._base_manager.bulk_create(batch)
        bar.update(len(batch))


def seed_usage(ctx: SeedContext) -> str:
    total = ctx.option("usage")
    if total and not ctx.accounts:
        raise CommandError("usage needs accounts: --accounts must be at least 1")
    totals: dict[int, int] = {}  # invoice id -> amount billed, in 1/10000 of a dollar
    rows = _usage_rows(ctx, ctx.rng("usage"), totals)
    if connection.vendor == "postgresql" and not ctx.option("no_copy"):
        _copy_usage(rows, total, ctx)
    else:
        _insert_usage(rows, total, ctx)
    # Amounts and numbers of the invoices the rows went on; a month without usage has no invoice.
    invoices = list(Invoice._base_manager.filter(pk__in=totals).order_by("pk"))
    for invoice in invoices:
        invoice.amount = to_cents(Decimal(totals[invoice.pk]).scaleb(-4))
        invoice.number = Invoice.number_for(invoice.pk)
    Invoice._base_manager.bulk_update(invoices, ["amount", "number"], batch_size=ctx.batch_size)
    Invoice._base_manager.filter(account__in=ctx.accounts, number__isnull=True).delete()
    paid = sum(invoice.status == Invoice.Status.PAID for invoice in invoices)
    return f"{total:,} usage records; {len(invoices):,} invoices ({paid:,} paid)"


def reset_usage(ctx: SeedContext) -> None:
    # Usage first, in one DELETE (usage has no delete signals, so Django need not load the rows);
    # then deleting the invoices has no usage to un-bill (SET_NULL) first.
    UsageRecord.objects.filter(account__owner__in=ctx.demo_users()).delete()
    Invoice.objects.filter(account__owner__in=ctx.demo_users()).delete()


STAGES: list[Stage] = [
    Stage("users", seed_users, reset_users),
    Stage("accounts", seed_accounts, reset_accounts),
    Stage("usage", seed_usage, reset_usage),  # and invoices
]


def all_stages() -> list[Stage]:
    """This module's STAGES, then each installed app's ``seeding.STAGES``."""
    stages = list(STAGES)
    for app in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{app.name}.seeding")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app.name}.seeding":
                raise  # the module exists but imports something missing
            continue
        stages.extend(getattr(module, "STAGES", []))
    return stages


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- the command ---------------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Create demo users, accounts, usage and invoices (reproducible with --seed; --reset to recreate)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=100, help="demo users (plus one staff user)")
        parser.add_argument("--accounts", type=int, default=250, help="billing accounts, owned by the demo users")
        parser.add_argument("--usage", type=int, default=1_000_000, help="usage records in total")
        parser.add_argument("--large-accounts", type=int, default=3, help="accounts with --large-account-usage each")
        parser.add_argument(
            "--large-account-usage", type=int, default=200_000, help="usage records of each large account"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed: the same seed, the same data")
        parser.add_argument("--batch-size", type=int, default=10_000, help="rows per INSERT or COPY write")
        parser.add_argument(
            "--now",
            type=_moment,
            default=None,
            help="the reference time, ISO 8601 (default: the current hour); usage ends here",
        )
        parser.add_argument("--reset", action="store_true", help="delete the demo data first, then create it anew")
        parser.add_argument("--no-copy", action="store_true", help="use INSERTs on PostgreSQL too (slower)")
        for stage in all_stages():
            for option in stage.options:
                parser.add_argument(option.flag, type=int, default=option.default, help=option.help)

    def handle(self, *args: Any, **options: Any) -> None:
        self._check(options)
        began = time.monotonic()
        ctx = SeedContext(
            options=options,
            # Whole hours, so that two runs with one seed within the hour create identical rows.
            now=options["now"] or timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0),
            quiet=options["verbosity"] == 0,
            stdout=self.stdout,
        )
        stages = all_stages()
        with transaction.atomic():
            if options["reset"]:
                self._reset(ctx, stages)
            elif ctx.demo_users().exists():
                self.stdout.write(
                    f"Demo data already present ({ctx.demo_users().count():,} demo users); nothing done. "
                    "Use --reset to recreate it."
                )
                return
            # Rows go in through COPY and the base managers, which invalidate nothing, and need not:
            # every account is new, and an id that did not exist has nothing cached.
            results = [self._run(ctx, stage) for stage in stages]
            committing = time.monotonic()
        ctx.log(f"commit: {time.monotonic() - committing:.1f}s")
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            started = time.monotonic()
            with connection.cursor() as cursor:
                # Statistics and the visibility map, so that the first reads of a large account are
                # already index-only scans (VACUUM cannot run inside the transaction).
                cursor.execute(f"VACUUM (ANALYZE) {UsageRecord._meta.db_table}")
            ctx.log(f"vacuum: {time.monotonic() - started:.1f}s")
        large = ", ".join(str(account.pk) for account in ctx.large_accounts) or "none"
        self.stdout.write(
            f"seed_demo: {'; '.join(results)} in {time.monotonic() - began:.1f}s (seed {options['seed']}); "
            f"large accounts: {large}; log in as {demo_email(0)} / {DEMO_PASSWORD} (staff: {STAFF_EMAIL})"
        )

    def _run(self, ctx: SeedContext, stage: Stage) -> str:
        started = time.monotonic()
        result = stage.run(ctx)
        ctx.log(f"{stage.name}: {result} in {time.monotonic() - started:.1f}s")
        return result

    def _check(self, options: dict[str, Any]) -> None:
        for name in ("users", "accounts", "usage", "large_accounts", "large_account_usage"):
            if options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["large_accounts"] > options["accounts"]:
            raise CommandError("--large-accounts cannot exceed --accounts")
        if options["large_accounts"] * options["large_account_usage"] > options["usage"]:
            raise CommandError("--usage must be at least --large-accounts x --large-account-usage")

    def _reset(self, ctx: SeedContext, stages: list[Stage]) -> None:
        # The deleted accounts' cached reads are invalidated by the signals and querysets (cache.py).
        doomed = Account.objects.filter(owner__in=ctx.demo_users()).count()
        started = time.monotonic()
        for stage in reversed(stages):
            if stage.reset:
                stage.reset(ctx)
        ctx.log(f"Deleted the previous demo data ({doomed:,} accounts) in {time.monotonic() - started:.1f}s")
