"""The cached reads: their cost, exactness on a large account, months, and reads racing writes."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from billing_app import selectors
from billing_app.models import Invoice, UsageRecord
from billing_app.money import month_start, next_month
from billing_app.services import invoice_issue, usage_record_create
from techbirdsfly.testing import CacheTestCase

from .factories import PRICES, make_account, make_usage, make_user


class SelectorTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.account = make_account(self.owner)


class QueryCostTests(SelectorTestCase):
    def test_a_miss_is_a_few_aggregate_queries_and_a_hit_none(self):
        for _ in range(50):
            make_usage(self.account, units=2)
        reads = [
            (selectors.account_summary, 3),  # the account, usage totals, invoice totals
            (selectors.account_usage, 2),  # the account, this month by metric
            (selectors.account_invoices, 2),  # the account, its invoices
        ]
        for read, queries in reads:
            with self.subTest(read=read.__name__):
                with self.assertNumQueries(queries):
                    self.assertFalse(read(account_id=self.account.pk, viewer=self.owner).from_cache)
                with self.assertNumQueries(0):
                    self.assertTrue(read(account_id=self.account.pk, viewer=self.owner).from_cache)


class LargeAccountTests(SelectorTestCase):
    def test_the_summary_of_100000_usage_records_is_exact(self):
        rng = random.Random(4)
        metrics = list(PRICES)
        first, second = [], []
        for batch in (first, second):
            for _ in range(50_000):
                metric = rng.choice(metrics)
                units = rng.randint(1, 1_000_000) if rng.random() < 0.01 else rng.randint(1, 500)
                batch.append(
                    UsageRecord(account=self.account, metric_id=metric, units=units, amount=units * PRICES[metric])
                )
            UsageRecord.objects.bulk_create(batch, batch_size=5000)
            if batch is first:
                billed = invoice_issue(account_id=self.account.pk)

        def cents(records) -> str:
            total = sum((r.amount for r in records), Decimal(0))
            return str(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

        summary = selectors.account_summary(account_id=self.account.pk, viewer=self.owner).value
        self.assertEqual(UsageRecord.objects.filter(account=self.account).count(), 100_000)
        self.assertEqual(summary["totalUsageUnits"], sum(r.units for r in first + second))
        self.assertEqual(summary["unbilledAmount"], cents(second))
        self.assertEqual(summary["totalInvoiced"], cents(first))
        self.assertEqual(str(billed.amount), cents(first))
        self.assertEqual(summary["outstandingBalance"], cents(first))
        self.assertEqual((summary["totalPaid"], summary["invoiceCount"]), ("0.00", 1))


class MonthTests(SelectorTestCase):
    def test_a_new_month_never_serves_last_months_figures(self):
        now = timezone.now()
        make_usage(self.account, units=40, recorded_at=now)
        this_month = selectors.account_usage(account_id=self.account.pk, viewer=self.owner, at=now)
        self.assertEqual(this_month.value["totalUnits"], 40)
        self.assertTrue(selectors.account_usage(account_id=self.account.pk, viewer=self.owner, at=now).from_cache)

        later = next_month(month_start(now)) + timedelta(hours=1)
        next_read = selectors.account_usage(account_id=self.account.pk, viewer=self.owner, at=later)
        self.assertFalse(next_read.from_cache)
        self.assertEqual(next_read.value["totalUnits"], 0)
        self.assertEqual(next_read.value["periodStart"], next_month(month_start(now)).isoformat())


class RaceTests(SelectorTestCase):
    """A read that computes from the database while a write commits must not leave its old figures cached."""

    def racing_summary(self, write, *, invalidate_before_store: bool):
        """Read the summary; mid-way through its computation (after its queries), run ``write``.

        With ``invalidate_before_store`` the write's invalidation runs before the read stores its
        result; otherwise it runs after (the write committed, its on_commit callback came later).
        """
        real = selectors._summary
        pending = []

        def compute(account):
            value = real(account)  # the pre-write figures
            with self.captureOnCommitCallbacks(execute=invalidate_before_store) as callbacks:
                write()
            pending.extend(callbacks)
            return value

        selectors._summary = compute
        try:
            stale = selectors.account_summary(account_id=self.account.pk, viewer=self.owner)
        finally:
            selectors._summary = real
        if not invalidate_before_store:
            for callback in pending:
                callback()
        return stale

    def check(self, write, expected_units: int, *, invalidate_before_store: bool):
        stale = self.racing_summary(write, invalidate_before_store=invalidate_before_store)
        self.assertFalse(stale.from_cache)
        self.assertNotEqual(stale.value["totalUsageUnits"], expected_units)  # it did race
        fresh = selectors.account_summary(account_id=self.account.pk, viewer=self.owner)
        self.assertFalse(fresh.from_cache)
        self.assertEqual(fresh.value["totalUsageUnits"], expected_units)
        again = selectors.account_summary(account_id=self.account.pk, viewer=self.owner)
        self.assertEqual((again.from_cache, again.value["totalUsageUnits"]), (True, expected_units))

    def test_write_invalidated_before_the_racing_read_stores(self):
        self.check(
            lambda: usage_record_create(viewer=self.owner, account_id=self.account.pk, metric="api.call", units=7),
            7,
            invalidate_before_store=True,
        )

    def test_write_invalidated_after_the_racing_read_stores(self):
        self.check(
            lambda: usage_record_create(viewer=self.owner, account_id=self.account.pk, metric="api.call", units=9),
            9,
            invalidate_before_store=False,
        )

    def test_invoice_issued_during_a_read(self):
        make_usage(self.account, units=5)
        stale = self.racing_summary(lambda: invoice_issue(account_id=self.account.pk), invalidate_before_store=True)
        self.assertEqual(stale.value["unbilledAmount"], "0.01")
        fresh = selectors.account_summary(account_id=self.account.pk, viewer=self.owner)
        self.assertFalse(fresh.from_cache)
        self.assertEqual((fresh.value["unbilledAmount"], fresh.value["totalInvoiced"]), ("0.00", "0.01"))
        self.assertEqual(Invoice.objects.count(), 1)
