"""MoneySum: exact Decimal sums of money columns on PostgreSQL and on SQLite."""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import Q, Sum
from django.db.utils import load_backend
from django.test import SimpleTestCase

from billing_app.aggregates import MoneySum
from billing_app.models import Invoice, UsageRecord
from billing_app.money import to_cents
from billing_app.tests.factories import make_account, make_invoice, make_usage, make_user
from techbirdsfly.testing import CacheTestCase

# A thousand records of 0.1000 and one of 0.0050 sum to exactly 100.0050 (100.01 in cents, half-up); SQLite
# adds them as floats (99.99999999999861 + 0.005), which Django reads as 100.004999999999 and rounds to 100.00.
AMOUNTS = [Decimal("0.1000")] * 1000 + [Decimal("0.0050")]
EXACT = Decimal("100.0050")


class MoneySumPostgresTests(CacheTestCase):
    def test_sums_are_exact_decimals_with_the_columns_places(self):
        account = make_account(make_user())
        for _ in range(3):
            make_usage(account, metric="storage.gb_day", units=231)  # 1.1550 each
        invoice = make_invoice(account, amount="0.10")
        make_invoice(account, amount="0.20", status=Invoice.Status.PAID)
        usage = UsageRecord.objects.filter(account=account).aggregate(total=MoneySum("amount"))["total"]
        self.assertEqual((type(usage), str(usage)), (Decimal, "3.4650"))
        totals = Invoice.objects.filter(account=account).aggregate(
            all=MoneySum("amount"),
            open=MoneySum("amount", filter=Q(pk=invoice.pk)),
            none=MoneySum("amount", filter=Q(pk=0)),
        )
        self.assertEqual({k: str(v) for k, v in totals.items()}, {"all": "0.30", "open": "0.10", "none": "None"})


class MoneySumSQLiteTests(SimpleTestCase):
    """The SQLite path of ``make run``, on an in-memory SQLite database of its own beside the test database."""

    alias = "money_sqlite"

    def setUp(self) -> None:
        databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        settings_dict = connections.configure_settings(databases)["default"]
        self.connection = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, self.alias)
        connections[self.alias] = self.connection
        with self.connection.schema_editor() as editor:
            editor.create_model(UsageRecord)
            editor.create_model(Invoice)
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")  # only the two tables summed exist here
            # Raw rows: the models' signals would invalidate caches through the default database.
            cursor.executemany(
                "INSERT INTO billing_app_usagerecord (account_id, metric, units, amount, recorded_at, invoice_id)"
                " VALUES (1, 'api.call', 1, %s, '2026-01-01 00:00:00', NULL)",
                [(str(amount),) for amount in AMOUNTS],
            )
            cursor.executemany(
                "INSERT INTO billing_app_invoice (account_id, number, amount, status, issued_at)"
                " VALUES (1, %s, %s, %s, '2026-01-01 00:00:00')",
                [("INV-1", "0.10", "paid"), ("INV-2", "0.20", "open"), ("INV-3", "0.05", "paid")],
            )

    def tearDown(self) -> None:
        self.connection.close()
        del connections[self.alias]

    def test_a_float_sum_is_off(self):
        # Why MoneySum exists: Django's own Sum on SQLite adds floats.
        total = UsageRecord.objects.using(self.alias).aggregate(total=Sum("amount"))["total"]
        self.assertNotEqual(total, EXACT)
        self.assertEqual(to_cents(total), Decimal("100.00"))

    def test_usage_sum_is_exact(self):
        total = UsageRecord.objects.using(self.alias).aggregate(total=MoneySum("amount"))["total"]
        self.assertEqual((type(total), str(total)), (Decimal, "100.0050"))
        self.assertEqual(to_cents(total), Decimal("100.01"))

    def test_filtered_invoice_sums_are_exact(self):
        totals = Invoice.objects.using(self.alias).aggregate(
            all=MoneySum("amount"),
            paid=MoneySum("amount", filter=Q(status="paid")),
            none=MoneySum("amount", filter=Q(status="void")),
        )
        self.assertEqual(totals, {"all": Decimal("0.35"), "paid": Decimal("0.15"), "none": None})
        self.assertEqual(str(totals["all"]), "0.35")
