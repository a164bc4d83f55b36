"""The writes: exact amounts, and invoices issued concurrently with each other and with new usage."""

from __future__ import annotations

import contextlib
import threading
from decimal import ROUND_HALF_UP, Decimal

from django.db import close_old_connections, connections
from django.db.models import Sum
from django.http import Http404
from django.test import override_settings
from rest_framework.exceptions import ValidationError

from billing_app.models import Account, Invoice, UsageRecord
from billing_app.services import (
    AlreadyPaid,
    NothingToBill,
    TooManyAccounts,
    account_create,
    invoice_issue,
    invoice_pay,
    usage_record_create,
)
from techbirdsfly.testing import CacheTestCase, LiveTestCase

from .factories import make_account, make_usage, make_user


class UsageRecordCreateTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.account = make_account(self.owner)

    def test_amount_is_units_times_the_unit_price_exactly(self):
        for metric, units, amount in (
            ("api.call", 1155, "1.1550"),
            ("image.generate", 7, "0.2800"),
            ("storage.gb_day", 999_999, "4999.9950"),
        ):
            with self.subTest(metric=metric):
                record = usage_record_create(viewer=self.owner, account_id=self.account.pk, metric=metric, units=units)
                record.refresh_from_db()
                self.assertEqual(record.amount, Decimal(amount))

    def test_unknown_metric_and_foreign_account(self):
        with self.assertRaises(ValidationError) as raised:
            usage_record_create(viewer=self.owner, account_id=self.account.pk, metric="gpu.hour", units=1)
        self.assertIn("metric", raised.exception.detail)
        with self.assertRaises(Http404):
            usage_record_create(viewer=make_user(), account_id=self.account.pk, metric="api.call", units=1)


class InvoiceServiceTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(make_user())

    def test_issue_then_pay(self):
        make_usage(self.account, metric="api.call", units=5)
        invoice = invoice_issue(account_id=self.account.pk)
        self.assertEqual((invoice.amount, invoice.number), (Decimal("0.01"), f"INV-{invoice.pk:06d}"))
        with self.assertRaises(NothingToBill):
            invoice_issue(account_id=self.account.pk)
        paid = invoice_pay(account_id=self.account.pk, invoice_id=invoice.pk)
        self.assertEqual(paid.status, Invoice.Status.PAID)
        self.assertIsNotNone(paid.paid_at)
        with self.assertRaises(AlreadyPaid):
            invoice_pay(account_id=self.account.pk, invoice_id=invoice.pk)
        with self.assertRaises(Http404):
            invoice_pay(account_id=make_account(make_user()).pk, invoice_id=invoice.pk)


class ConcurrentInvoiceTests(LiveTestCase):
    """Real transactions on separate connections: no usage is billed twice or billed without being charged."""

    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.account = make_account(make_user())

    def run_threads(self, *targets) -> list[BaseException]:
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(targets))

        def wrap(target):
            def run():
                try:
                    barrier.wait()
                    target()
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    close_old_connections()
                    connections.close_all()

            return run

        threads = [threading.Thread(target=wrap(t)) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return errors

    def assert_every_invoice_charges_exactly_its_usage(self) -> None:
        for invoice in Invoice.objects.filter(account=self.account):
            total = invoice.usage_records.aggregate(total=Sum("amount"))["total"] or Decimal(0)
            self.assertEqual(invoice.amount, total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), invoice.number)

    def test_concurrent_issues_bill_the_usage_once(self):
        for units in range(1, 201):
            make_usage(self.account, units=units)
        issued: list[Invoice] = []
        conflicts: list[NothingToBill] = []

        def issue():
            try:
                issued.append(invoice_issue(account_id=self.account.pk))
            except NothingToBill as exc:
                conflicts.append(exc)

        errors = self.run_threads(issue, issue, issue, issue)
        self.assertEqual(errors, [])
        self.assertEqual((len(issued), len(conflicts)), (1, 3))
        self.assertEqual(issued[0].amount, Decimal("20.10"))  # 20100 units x 0.0010
        self.assertFalse(UsageRecord.objects.filter(invoice__isnull=True).exists())
        self.assert_every_invoice_charges_exactly_its_usage()

    def test_usage_recorded_while_invoices_are_issued_is_billed_at_most_once(self):
        owner = self.account.owner

        recorded = threading.Event()

        def record():
            try:
                for _ in range(150):
                    usage_record_create(viewer=owner, account_id=self.account.pk, metric="api.call", units=3)
            finally:
                recorded.set()

        def issue():
            # Until the last record: issuing must overlap the recording however the threads are scheduled.
            while not recorded.wait(0.005):
                with contextlib.suppress(NothingToBill):
                    invoice_issue(account_id=self.account.pk)

        errors = self.run_threads(record, issue, issue)
        self.assertEqual(errors, [])
        self.assert_every_invoice_charges_exactly_its_usage()
        records = UsageRecord.objects.filter(account=self.account)
        self.assertEqual(records.count(), 150)
        self.assertGreater(Invoice.objects.count(), 1)
        billed = records.filter(invoice__isnull=False).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        invoiced = Invoice.objects.filter(account=self.account).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        # Each record is 0.0030: with every invoice rounded, the invoiced total is within cents of the billed usage.
        self.assertLessEqual(abs(invoiced - billed), Decimal("0.005") * Invoice.objects.count())
        self.assertEqual(len(set(Invoice.objects.values_list("number", flat=True))), Invoice.objects.count())


@override_settings(BILLING_ACCOUNT_LIMIT=3)
class AccountLimitRaceTests(LiveTestCase):
    def test_concurrent_creations_cannot_pass_the_limit_together(self):
        owner = make_user()
        make_account(owner)
        start = threading.Barrier(6)

        def create(i: int) -> str:
            try:
                start.wait(10)
                account_create(owner=owner, name=f"racer {i}", plan="free", currency="USD")
                return "created"
            except TooManyAccounts:
                return "refused"
            finally:
                close_old_connections()
                connections.close_all()

        threads_results: list[str] = []
        threads = [threading.Thread(target=lambda i=i: threads_results.append(create(i))) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(sorted(threads_results), ["created"] * 2 + ["refused"] * 4)
        self.assertEqual(Account.objects.filter(owner=owner).count(), 3)
