"""billing_app's stages of ``manage.py seed_demo``: accounts, then usage with its invoices.

Skewed usage (a few very large accounts, a long tail of small ones) and monthly invoices (older ones
paid) are generated in bulk: usage goes in with PostgreSQL's COPY. The accounts stage hands
``ctx.shared["accounts"]`` and ``ctx.shared["large_accounts"]`` to the usage stage. Rows go in
through COPY and the base managers, which invalidate nothing, and need not: every account is new,
and an id that did not exist has nothing cached.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import CommandError
from django.db import connection

from techbirdsfly.seeding import ACTIVITY_DAYS, SeedContext, Stage, StageOption, batches

from .models import MAX_UNITS, Account, Invoice, Price, UsageRecord
from .money import month_start, next_month, to_cents

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
                created_at=ctx.now - timedelta(days=ACTIVITY_DAYS + rng.randint(1, 200)),
            )
        )
    with ctx.progress(total=count, desc="accounts") as bar:
        for batch in batches(accounts, ctx.batch_size):
            Account.objects.bulk_create(batch)
            bar.update(len(batch))
    ctx.shared["accounts"], ctx.shared["large_accounts"] = accounts, accounts[:large]
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
    large, per_large = ctx.shared["large_accounts"], ctx.option("large_account_usage")
    counts = {account.pk: per_large for account in large}
    rest = total - per_large * len(large)
    tail = [account.pk for account in ctx.shared["accounts"][len(large) :]]
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
    large = {account.pk for account in ctx.shared["large_accounts"]}
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
    for batch in batches(invoices, ctx.batch_size):
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
    start = ctx.now - timedelta(days=ACTIVITY_DAYS)
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
    if total and not ctx.shared["accounts"]:
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
    Invoice._base_manager.filter(account__in=ctx.shared["accounts"], number__isnull=True).delete()
    paid = sum(invoice.status == Invoice.Status.PAID for invoice in invoices)
    return f"{total:,} usage records; {len(invoices):,} invoices ({paid:,} paid)"


def reset_usage(ctx: SeedContext) -> None:
    # Usage first, in one DELETE (usage has no delete signals, so Django need not load the rows);
    # then deleting the invoices has no usage to un-bill (SET_NULL) first.
    UsageRecord.objects.filter(account__owner__in=ctx.demo_users()).delete()
    Invoice.objects.filter(account__owner__in=ctx.demo_users()).delete()


def check_options(options: dict[str, Any]) -> None:
    if options["large_accounts"] > options["accounts"]:
        raise CommandError("--large-accounts cannot exceed --accounts")
    if options["large_accounts"] * options["large_account_usage"] > options["usage"]:
        raise CommandError("--usage must be at least --large-accounts x --large-account-usage")


def vacuum_usage(ctx: SeedContext) -> None:
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    started = time.monotonic()
    with connection.cursor() as cursor:
        # Statistics and the visibility map, so that the first reads of a large account are
        # already index-only scans (VACUUM cannot run inside the transaction).
        cursor.execute(f"VACUUM (ANALYZE) {UsageRecord._meta.db_table}")
    ctx.log(f"vacuum: {time.monotonic() - started:.1f}s")


def large_accounts_note(ctx: SeedContext) -> str:
    large = ctx.shared.get("large_accounts", [])
    return f"large accounts: {', '.join(str(account.pk) for account in large) or 'none'}"


STAGES = [
    Stage(
        "accounts",
        seed_accounts,
        reset_accounts,
        options=(
            StageOption("--accounts", 250, "billing accounts, owned by the demo users"),
            StageOption("--large-accounts", 3, "accounts with --large-account-usage each"),
        ),
        check=check_options,
        note=large_accounts_note,
    ),
    Stage(
        "usage",  # and invoices
        seed_usage,
        reset_usage,
        options=(
            StageOption("--usage", 1_000_000, "usage records in total"),
            StageOption("--large-account-usage", 200_000, "usage records of each large account"),
            StageOption("--no-copy", False, "use INSERTs on PostgreSQL too (slower)"),
        ),
        after_commit=vacuum_usage,
    ),
]
