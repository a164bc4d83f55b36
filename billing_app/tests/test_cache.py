"""Changes made through the ORM or the Django admin invalidate the account's cached reads too."""

from __future__ import annotations

from decimal import Decimal

from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from auth_app.models import User
from billing_app import selectors
from billing_app.models import Account, Invoice, Price, UsageRecord
from techbirdsfly.testing import CacheTestCase

from .factories import make_account, make_invoice, make_usage, make_user


class InvalidationTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.account = make_account(self.owner)
        self.record = make_usage(self.account, metric="api.call", units=100)  # 0.1000
        self.invoice = make_invoice(self.account, amount="4.00")
        make_usage(self.account, metric="image.generate", units=100, invoice=self.invoice)  # 4.0000, billed

    def summary(self, account=None, viewer=None):
        account = account or self.account
        return selectors.account_summary(account_id=account.pk, viewer=viewer or account.owner)

    def prime(self, account=None) -> None:
        """Cache the account's three reads and check that they are served from Redis."""
        account = account or self.account
        for read in (selectors.account_summary, selectors.account_usage, selectors.account_invoices):
            read(account_id=account.pk, viewer=account.owner)
            self.assertTrue(read(account_id=account.pk, viewer=account.owner).from_cache)

    def assert_all_fresh(self, account=None) -> None:
        account = account or self.account
        for read in (selectors.account_summary, selectors.account_usage, selectors.account_invoices):
            with self.subTest(read=read.__name__):
                self.assertFalse(read(account_id=account.pk, viewer=account.owner).from_cache)

    def changed(self):
        """The block's writes commit (their on_commit invalidations run), as they would in production."""
        return self.captureOnCommitCallbacks(execute=True)


class OrmInvalidationTests(InvalidationTestCase):
    def check(self, change, **expected) -> None:
        self.prime()
        with self.changed():
            change()
        self.assert_all_fresh()
        value = self.summary().value
        self.assertEqual({k: value[k] for k in expected}, expected)

    def test_account_saved(self):
        def rename():
            self.account.name = "Renamed"
            self.account.save()

        self.check(rename, name="Renamed")

    def test_account_queryset_update(self):
        self.check(lambda: Account.objects.filter(pk=self.account.pk).update(plan="enterprise"), plan="enterprise")

    def test_usage_created_saved_and_deleted(self):
        self.check(lambda: make_usage(self.account, units=50), totalUsageUnits=250, unbilledAmount="0.15")

        def edit():
            self.record.units, self.record.amount = 300, Decimal("0.3000")
            self.record.save()

        self.check(edit, totalUsageUnits=450, unbilledAmount="0.35")
        self.check(self.record.delete, totalUsageUnits=150, unbilledAmount="0.05")

    def test_usage_queryset_update_and_delete(self):
        unbilled = UsageRecord.objects.filter(account=self.account, invoice__isnull=True)
        self.check(lambda: unbilled.update(units=10, amount=Decimal("0.0100")), unbilledAmount="0.01")
        self.check(unbilled.delete, totalUsageUnits=100, unbilledAmount="0.00")

    def test_usage_bulk_create_and_bulk_update(self):
        def bulk_create():
            record = {"account": self.account, "metric_id": "api.call", "units": 5, "amount": Decimal("0.005")}
            UsageRecord.objects.bulk_create([UsageRecord(**record), UsageRecord(**record)])

        self.check(bulk_create, totalUsageUnits=210, unbilledAmount="0.11")

        def bulk_update():
            self.record.amount = Decimal("1.0000")
            UsageRecord.objects.bulk_update([self.record], ["amount"])

        self.check(bulk_update, unbilledAmount="1.01")

    def test_invoice_saved_updated_and_deleted(self):
        def pay():
            self.invoice.status, self.invoice.paid_at = Invoice.Status.PAID, timezone.now()
            self.invoice.save()

        self.check(pay, totalPaid="4.00", outstandingBalance="0.00")
        self.check(
            lambda: Invoice.objects.filter(pk=self.invoice.pk).update(status=Invoice.Status.OPEN),
            totalPaid="0.00",
            outstandingBalance="4.00",
        )
        # Deleting (voiding) an invoice makes its usage unbilled again.
        self.check(self.invoice.delete, invoiceCount=0, totalInvoiced="0.00", unbilledAmount="4.10")

    def test_moving_usage_to_another_account_invalidates_both(self):
        elsewhere = make_account(self.owner, name="Elsewhere")
        self.prime()
        self.prime(elsewhere)
        record = UsageRecord.objects.get(pk=self.record.pk)
        with self.changed():
            record.account = elsewhere
            record.save()
        self.assert_all_fresh()
        self.assert_all_fresh(elsewhere)
        self.assertEqual(self.summary(elsewhere).value["totalUsageUnits"], 100)

    def test_a_new_owner_takes_over_at_once_although_the_reads_were_cached(self):
        new_owner = make_user()
        self.prime()
        with self.changed():
            self.account.owner = new_owner
            self.account.save()
        with self.assertRaises(Http404):
            self.summary(viewer=self.owner)
        self.assertEqual(self.summary(viewer=new_owner).value["accountId"], self.account.pk)

    def test_a_deleted_account_is_gone_at_once(self):
        self.prime()
        with self.changed():
            self.account.delete()
        for read in (selectors.account_summary, selectors.account_usage, selectors.account_invoices):
            with self.subTest(read=read.__name__), self.assertRaises(Http404):
                read(account_id=self.account.pk, viewer=self.owner)

    def test_a_price_change_leaves_recorded_amounts_and_the_cache_alone(self):
        # Usage keeps the amount of the price in force when it was recorded; no cached read shows a price.
        before = self.summary().value
        with self.changed():
            Price.objects.filter(pk="api.call").update(unit_price=Decimal("9.0000"))
        cached = self.summary()
        self.assertTrue(cached.from_cache)
        self.assertEqual(cached.value, before)
        self.assertEqual(selectors._summary(self.account)["unbilledAmount"], before["unbilledAmount"])


class AdminInvalidationTests(InvalidationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(User.objects.create_superuser("root@example.com", "x"))

    def test_invoice_marked_paid_in_its_change_form(self):
        self.prime()
        now = timezone.now()
        with self.changed():
            response = self.client.post(
                reverse("admin:billing_app_invoice_change", args=[self.invoice.pk]),
                {
                    "account": self.account.pk,
                    "status": "paid",
                    "issued_at_0": f"{now:%Y-%m-%d}",
                    "issued_at_1": f"{now:%H:%M:%S}",
                    "paid_at_0": "",
                    "paid_at_1": "",
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        self.assert_all_fresh()
        self.assertEqual(self.summary().value["totalPaid"], "4.00")
        self.assertIsNotNone(Invoice.objects.get(pk=self.invoice.pk).paid_at)

    def test_mark_paid_action(self):
        self.prime()
        with self.changed():
            response = self.client.post(
                reverse("admin:billing_app_invoice_changelist"),
                {"action": "mark_paid", "_selected_action": [self.invoice.pk]},
            )
        self.assertEqual(response.status_code, 302)
        self.assert_all_fresh()
        self.assertEqual(self.summary().value["outstandingBalance"], "0.00")

    def test_usage_added_in_the_admin_is_priced_and_invalidates(self):
        self.prime()
        now = timezone.now()
        with self.changed():
            response = self.client.post(
                reverse("admin:billing_app_usagerecord_add"),
                {
                    "account": self.account.pk,
                    "metric": "storage.gb_day",
                    "units": 3,
                    "recorded_at_0": f"{now:%Y-%m-%d}",
                    "recorded_at_1": f"{now:%H:%M:%S}",
                    "invoice": "",
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        self.assertEqual(UsageRecord.objects.get(metric="storage.gb_day").amount, Decimal("0.0150"))
        self.assert_all_fresh()
        self.assertEqual(self.summary().value["totalUsageUnits"], 203)

    def test_usage_deleted_in_the_admin(self):
        self.prime()
        with self.changed():
            response = self.client.post(
                reverse("admin:billing_app_usagerecord_delete", args=[self.record.pk]), {"post": "yes"}
            )
        self.assertEqual(response.status_code, 302)
        self.assert_all_fresh()
        self.assertEqual(self.summary().value["totalUsageUnits"], 100)

    def test_account_renamed_in_the_admin(self):
        self.prime()
        with self.changed():
            response = self.client.post(
                reverse("admin:billing_app_account_change", args=[self.account.pk]),
                {
                    "owner": self.owner.pk,
                    "name": "Via admin",
                    "plan": "free",
                    "currency": "USD",
                    "created_at_0": f"{self.account.created_at:%Y-%m-%d}",
                    "created_at_1": f"{self.account.created_at:%H:%M:%S}",
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        self.assert_all_fresh()
        self.assertEqual(self.summary().value["name"], "Via admin")

    def test_the_usage_list_and_forms_render(self):
        for name, args in (
            ("admin:billing_app_usagerecord_changelist", []),
            ("admin:billing_app_invoice_changelist", []),
            ("admin:billing_app_account_changelist", []),
            ("admin:billing_app_price_changelist", []),
            ("admin:billing_app_usagerecord_change", [self.record.pk]),
        ):
            with self.subTest(page=name):
                self.assertEqual(self.client.get(reverse(name, args=args)).status_code, 200)
