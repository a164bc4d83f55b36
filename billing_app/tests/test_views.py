"""Every row of API.md's billing table, over HTTP, against the real Redis and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.test import override_settings
from django.utils import timezone

from billing_app.models import Account, Invoice, UsageRecord
from billing_app.money import iso, month_start
from techbirdsfly.cache import generations
from techbirdsfly.models import CacheJournal
from techbirdsfly.testing import CacheTestCase, breaker_clock, poll_until, test_redis

from .factories import make_account, make_invoice, make_token, make_usage, make_user

BIGINT_MAX = 2**63 - 1


class BillingTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.other = make_user()
        self.staff = make_user(staff=True)
        self.account = make_account(self.owner)

    def as_user(self, user):
        return self.api.bearer(make_token(user) if user else None)

    def assertIsoWithOffset(self, value: str) -> None:
        moment = datetime.fromisoformat(value)
        self.assertIsNotNone(moment.tzinfo, value)
        self.assertTrue(value.endswith("+00:00"), value)


class AccountCreateTests(BillingTestCase):
    url = "/api/billing/accounts"

    def test_creates_an_account_owned_by_the_caller_with_defaults(self):
        response = self.as_user(self.other).post(self.url, {"name": "Birds Inc"}, format="json")
        self.assertEqual(response.status_code, 201)
        body = response.json()
        account = Account.objects.get(pk=body["id"])
        self.assertEqual(
            body,
            {
                "id": account.pk,
                "name": "Birds Inc",
                "plan": "free",
                "currency": "USD",
                "createdAt": iso(account.created_at),
            },
        )
        self.assertEqual(account.owner_id, self.other.pk)

    def test_the_fifty_first_account_of_a_user_is_409_naming_the_limit(self):
        client = self.as_user(self.other)
        statuses = [client.post(self.url, {"name": f"a{i}"}, format="json").status_code for i in range(50)]
        self.assertEqual(statuses, [201] * 50)
        refused = client.post(self.url, {"name": "one too many"}, format="json")
        self.assertEqual(refused.status_code, 409)
        self.assertIn("50", refused.json()["detail"])
        self.assertEqual(Account.objects.filter(owner=self.other).count(), 50)
        # Another user is not affected.
        self.assertEqual(self.as_user(self.staff).post(self.url, {"name": "x"}, format="json").status_code, 201)

    def test_plan_and_currency_are_taken(self):
        response = self.as_user(self.other).post(
            self.url, {"name": "Big", "plan": "enterprise", "currency": "USD"}, format="json"
        )
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["plan"], "enterprise")

    def test_bad_bodies_answer_400_naming_the_field(self):
        cases = [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": None}, "name"),
            ({"name": "x", "plan": "gold"}, "plan"),
            ({"name": "x", "plan": None}, "plan"),
            ({"name": "x", "currency": "EUR"}, "currency"),
        ]
        client = self.as_user(self.other)
        for body, field in cases:
            with self.subTest(body=body):
                response = client.post(self.url, body, format="json")
                self.assertEqual(response.status_code, 400)
                self.assertIn(field, response.json())
                self.assertTrue(response.json()[field][0])

    def test_malformed_json_is_400(self):
        response = self.as_user(self.other).post(self.url, "{name: ", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("JSON parse error", response.json()["detail"])

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.post(self.url, {"name": "x"}, format="json").status_code, 401)


class SummaryTests(BillingTestCase):
    def url(self, account_id=None) -> str:
        return f"/api/billing/summary/{account_id or self.account.pk}"

    def test_from_the_database_then_from_redis_without_a_query(self):
        client = self.as_user(self.owner)
        first = client.get(self.url())
        self.assertEqual(first.status_code, 200)
        self.assertFalse(first.json()["fromCache"])
        with self.assertNumQueries(0):
            second = client.get(self.url())
        self.assertTrue(second.json()["fromCache"])
        self.assertEqual(second.json()["data"], first.json()["data"])

    def test_figures_are_exact_to_the_cent(self):
        paid = make_invoice(self.account, amount="10.00", status=Invoice.Status.PAID, paid_at=timezone.now())
        make_usage(self.account, metric="image.generate", units=250, invoice=paid)  # 10.0000, billed
        make_invoice(self.account, amount="2.50")
        make_usage(self.account, metric="api.call", units=1155)  # 1.1550
        make_usage(self.account, metric="image.generate", units=3)  # 0.1200
        make_usage(self.account, metric="storage.gb_day", units=1)  # 0.0050 -> unbilled 1.2800
        data = self.as_user(self.owner).get(self.url()).json()["data"]
        self.assertIsoWithOffset(data.pop("computedAt"))
        self.assertEqual(
            data,
            {
                "accountId": self.account.pk,
                "name": "Acme",
                "plan": "pro",
                "currency": "USD",
                "totalUsageUnits": 250 + 1155 + 3 + 1,
                "unbilledAmount": "1.28",
                "totalInvoiced": "12.50",
                "totalPaid": "10.00",
                "outstandingBalance": "2.50",
                "invoiceCount": 2,
            },
        )

    def test_unbilled_amount_rounds_half_up(self):
        make_usage(self.account, metric="api.call", units=25)  # 0.0250: half-up "0.03", half-even "0.02"
        self.assertEqual(self.as_user(self.owner).get(self.url()).json()["data"]["unbilledAmount"], "0.03")

    def test_an_empty_account_is_all_zeros(self):
        data = self.as_user(self.owner).get(self.url()).json()["data"]
        self.assertEqual(
            [data[k] for k in ("totalUsageUnits", "unbilledAmount", "totalInvoiced", "totalPaid", "invoiceCount")],
            [0, "0.00", "0.00", "0.00", 0],
        )

    def test_staff_may_read_any_account(self):
        response = self.as_user(self.staff).get(self.url())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["data"]["accountId"], self.account.pk)

    def test_a_foreign_account_is_404_and_nothing_is_cached_for_it(self):
        response = self.as_user(self.other).get(self.url())
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "Account not found."})
        self.assertNotIn(f"BillingService_billing:summary:{self.account.pk}", self.redis_keys())

    def test_a_foreign_account_is_404_when_its_summary_is_cached_too(self):
        self.as_user(self.owner).get(self.url())
        response = self.as_user(self.other).get(self.url())
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "Account not found."})

    def test_unknown_and_malformed_ids_are_404(self):
        client = self.as_user(self.owner)
        for path in ("999999", "abc", "-1", "1.5", "99999999999999999999", str(BIGINT_MAX)):
            with self.subTest(path=path):
                response = client.get(f"/api/billing/summary/{path}")
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response["Content-Type"], "application/json")

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url()).status_code, 401)


class UsageCreateTests(BillingTestCase):
    url = "/api/billing/usage"

    def post(self, body, user=None):
        return self.as_user(user or self.owner).post(self.url, body, format="json")

    def test_records_usage_with_the_exact_amount(self):
        response = self.post({"accountId": self.account.pk, "metric": "api.call", "units": 1155})
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertIsoWithOffset(body.pop("recordedAt"))
        record = UsageRecord.objects.get()
        expected = {"id": record.pk, "accountId": self.account.pk, "metric": "api.call", "units": 1155}
        self.assertEqual(body, {**expected, "amount": "1.1550"})
        self.assertEqual(str(record.amount), "1.1550")

    def test_the_largest_record(self):
        response = self.post({"accountId": self.account.pk, "metric": "image.generate", "units": 1_000_000})
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["amount"], "40000.0000")

    def test_bad_units_are_400_naming_the_field(self):
        for units in (0, -1, 1_000_001, 10**30, 1.5, 5.0, 1e3, "5", "five", True, False, None, [], {}):
            with self.subTest(units=units):
                response = self.post({"accountId": self.account.pk, "metric": "api.call", "units": units})
                self.assertEqual(response.status_code, 400)
                self.assertTrue(response.json()["units"][0])
        self.assertEqual(self.post({"accountId": self.account.pk, "metric": "api.call"}).status_code, 400)
        self.assertFalse(UsageRecord.objects.exists())

    def test_a_string_or_fractional_unit_count_is_refused_with_a_reason(self):
        response = self.post({"accountId": self.account.pk, "metric": "api.call", "units": "5"})
        self.assertIn("JSON integer", response.json()["units"][0])

    def test_bad_account_ids_in_the_body_are_400(self):
        for account_id in (str(self.account.pk), float(self.account.pk), True, 0, -5, BIGINT_MAX + 1, None, "abc"):
            with self.subTest(accountId=account_id):
                response = self.post({"accountId": account_id, "metric": "api.call", "units": 1})
                self.assertEqual(response.status_code, 400)
                self.assertTrue(response.json()["accountId"][0])

    def test_unknown_metric_is_400_listing_the_known_ones(self):
        for metric in ("api.calls", "", 42, None, "x" * 65):
            with self.subTest(metric=metric):
                response = self.post({"accountId": self.account.pk, "metric": metric, "units": 1})
                self.assertEqual(response.status_code, 400)
                self.assertTrue(response.json()["metric"][0])
        message = self.post({"accountId": self.account.pk, "metric": "api.calls", "units": 1}).json()["metric"][0]
        self.assertIn("api.call, image.generate, storage.gb_day", message)

    def test_malformed_and_non_object_bodies_are_400(self):
        client = self.as_user(self.owner)
        for raw in ('{"accountId": 1,', "[1, 2]", "null", '"text"', '{"units": NaN}'):
            with self.subTest(body=raw):
                response = client.post(self.url, raw, content_type="application/json")
                self.assertEqual(response.status_code, 400)
                self.assertTrue(response.json())

    def test_usage_posted_to_a_foreign_or_unknown_account_is_404(self):
        for account_id in (self.account.pk, 987654321):
            with self.subTest(accountId=account_id):
                response = self.post({"accountId": account_id, "metric": "api.call", "units": 1}, user=self.other)
                self.assertEqual(response.status_code, 404)
        self.assertFalse(UsageRecord.objects.exists())

    def test_staff_may_record_usage_on_any_account(self):
        response = self.post({"accountId": self.account.pk, "metric": "api.call", "units": 3}, user=self.staff)
        self.assertEqual(response.status_code, 201)

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.post(self.url, {}, format="json").status_code, 401)

    def test_the_next_summary_and_usage_reads_are_fresh(self):
        client = self.as_user(self.owner)
        summary, usage = f"/api/billing/summary/{self.account.pk}", f"/api/billing/usage/{self.account.pk}"
        client.get(summary), client.get(usage)
        self.assertTrue(client.get(summary).json()["fromCache"])
        self.assertTrue(client.get(usage).json()["fromCache"])
        client.post(self.url, {"accountId": self.account.pk, "metric": "api.call", "units": 1155}, format="json")
        after = client.get(summary).json()
        self.assertFalse(after["fromCache"])
        self.assertEqual((after["data"]["totalUsageUnits"], after["data"]["unbilledAmount"]), (1155, "1.16"))
        after = client.get(usage).json()
        self.assertFalse(after["fromCache"])
        self.assertEqual(after["data"]["byMetric"], {"api.call": 1155})
        self.assertTrue(client.get(summary).json()["fromCache"])


class UsageReadTests(BillingTestCase):
    def url(self, account_id=None) -> str:
        return f"/api/billing/usage/{account_id or self.account.pk}"

    def test_this_months_usage_by_metric_then_from_redis(self):
        start = month_start(timezone.now())
        make_usage(self.account, metric="api.call", units=100)
        make_usage(self.account, metric="api.call", units=5, recorded_at=start)
        make_usage(self.account, metric="image.generate", units=2)
        make_usage(self.account, metric="storage.gb_day", units=7, recorded_at=start - timedelta(microseconds=1))
        client = self.as_user(self.owner)
        first = client.get(self.url()).json()
        self.assertEqual(
            first,
            {
                "fromCache": False,
                "data": {
                    "accountId": self.account.pk,
                    "periodStart": start.isoformat(),
                    "periodEnd": first["data"]["periodEnd"],
                    "totalUnits": 107,
                    "byMetric": {"api.call": 105, "image.generate": 2},
                },
            },
        )
        self.assertIsoWithOffset(first["data"]["periodStart"])
        self.assertGreater(datetime.fromisoformat(first["data"]["periodEnd"]), start + timedelta(days=27))
        second = client.get(self.url()).json()
        self.assertEqual(second, {**first, "fromCache": True})
        self.assertIn(f"BillingService_billing:usage:{self.account.pk}:{start:%Y-%m}", self.redis_keys())

    def test_staff_may_read_any_account(self):
        self.assertEqual(self.as_user(self.staff).get(self.url()).status_code, 200)

    def test_foreign_unknown_and_malformed_accounts_are_404(self):
        client = self.as_user(self.other)
        for path in (self.url(), self.url(987654321), "/api/billing/usage/abc", "/api/billing/usage/1e3"):
            with self.subTest(path=path):
                self.assertEqual(client.get(path).status_code, 404)

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url()).status_code, 401)


class InvoiceListTests(BillingTestCase):
    def url(self, account_id=None) -> str:
        return f"/api/billing/invoices/{account_id or self.account.pk}"

    def test_newest_first_then_from_redis(self):
        now = timezone.now()
        old = make_invoice(
            self.account, amount="3.10", status=Invoice.Status.PAID, issued_at=now - timedelta(days=40), paid_at=now
        )
        new = make_invoice(self.account, amount="0.50", issued_at=now - timedelta(days=1))
        client = self.as_user(self.owner)
        first = client.get(self.url()).json()
        self.assertFalse(first["fromCache"])
        self.assertEqual([i["id"] for i in first["data"]], [new.pk, old.pk])
        self.assertEqual(
            first["data"][1],
            {
                "id": old.pk,
                "accountId": self.account.pk,
                "number": old.number,
                "amount": "3.10",
                "status": "paid",
                "issuedAt": old.issued_at.isoformat(),
                "paidAt": now.isoformat(),
            },
        )
        self.assertIsNone(first["data"][0]["paidAt"])
        self.assertEqual(client.get(self.url()).json(), {**first, "fromCache": True})

    def test_an_account_without_invoices_has_an_empty_list(self):
        self.assertEqual(self.as_user(self.owner).get(self.url()).json(), {"fromCache": False, "data": []})

    def test_staff_may_read_any_account(self):
        self.assertEqual(self.as_user(self.staff).get(self.url()).status_code, 200)

    def test_foreign_unknown_and_malformed_accounts_are_404(self):
        client = self.as_user(self.other)
        for path in (self.url(), self.url(987654321), "/api/billing/invoices/x1"):
            with self.subTest(path=path):
                self.assertEqual(client.get(path).status_code, 404)

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url()).status_code, 401)


class InvoiceIssueTests(BillingTestCase):
    def url(self, account_id=None) -> str:
        return f"/api/billing/invoices/{account_id or self.account.pk}"

    def test_staff_bills_all_unbilled_usage_rounded_half_up(self):
        make_usage(self.account, metric="api.call", units=25)  # 0.0250
        make_usage(self.account, metric="image.generate", units=3)  # 0.1200 -> 0.1450 -> "0.15"
        earlier = make_invoice(self.account, amount="1.00")
        make_usage(self.account, metric="api.call", units=999, invoice=earlier)  # already billed
        response = self.as_user(self.staff).post(self.url())
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertRegex(body["number"], r"^INV-\d{6,}$")
        self.assertNotEqual(body["number"], earlier.number)
        self.assertIsoWithOffset(body.pop("issuedAt"))
        invoice = Invoice.objects.get(pk=body["id"])
        self.assertEqual(
            body,
            {
                "id": invoice.pk,
                "accountId": self.account.pk,
                "number": f"INV-{invoice.pk:06d}",
                "amount": "0.15",
                "status": "open",
                "paidAt": None,
            },
        )
        self.assertEqual(invoice.usage_records.count(), 2)
        self.assertFalse(UsageRecord.objects.filter(invoice__isnull=True).exists())

    def test_nothing_unbilled_is_409(self):
        client = self.as_user(self.staff)
        self.assertEqual(client.post(self.url()).status_code, 409)
        make_usage(self.account, units=1)
        self.assertEqual(client.post(self.url()).status_code, 201)
        response = client.post(self.url())
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json(), {"detail": "This account has no unbilled usage."})
        self.assertEqual(Invoice.objects.count(), 1)

    def test_non_staff_is_403_before_any_lookup(self):
        make_usage(self.account, units=1)
        for user in (self.owner, self.other):
            for account_id in (self.account.pk, 987654321):
                with self.subTest(user=user.email, account=account_id):
                    response = self.as_user(user).post(self.url(account_id))
                    self.assertEqual(response.status_code, 403)
        self.assertFalse(Invoice.objects.exists())

    def test_unknown_or_malformed_account_is_404_for_staff(self):
        client = self.as_user(self.staff)
        self.assertEqual(client.post(self.url(987654321)).status_code, 404)
        self.assertEqual(client.post("/api/billing/invoices/abc").status_code, 404)

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.post(self.url()).status_code, 401)

    def test_the_next_reads_are_fresh_and_exact(self):
        make_usage(self.account, metric="api.call", units=25)
        make_usage(self.account, metric="image.generate", units=3)
        owner = self.as_user(self.owner)
        summary, invoices = f"/api/billing/summary/{self.account.pk}", self.url()
        self.assertEqual(owner.get(summary).json()["data"]["unbilledAmount"], "0.15")
        self.assertEqual(owner.get(invoices).json()["data"], [])
        issued = self.as_user(self.staff).post(self.url()).json()
        owner = self.as_user(self.owner)
        after = owner.get(summary).json()
        self.assertFalse(after["fromCache"])
        data = after["data"]
        self.assertEqual(
            (data["unbilledAmount"], data["totalInvoiced"], data["outstandingBalance"], data["invoiceCount"]),
            ("0.00", "0.15", "0.15", 1),
        )
        self.assertEqual(data["totalUsageUnits"], 28)
        listed = owner.get(invoices).json()
        self.assertFalse(listed["fromCache"])
        self.assertEqual(listed["data"], [issued])


class InvoicePayTests(BillingTestCase):
    def setUp(self) -> None:
        super().setUp()
        make_usage(self.account, metric="image.generate", units=25)  # 1.00
        self.invoice = self.as_user(self.staff).post(f"/api/billing/invoices/{self.account.pk}").json()

    def url(self, account_id=None, invoice_id=None) -> str:
        return f"/api/billing/invoices/{account_id or self.account.pk}/{invoice_id or self.invoice['id']}/pay"

    def test_staff_pays_an_open_invoice_once(self):
        client = self.as_user(self.staff)
        response = client.post(self.url())
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["status"], "paid")
        self.assertIsoWithOffset(body["paidAt"])
        for field in ("id", "accountId", "number", "amount", "issuedAt"):
            self.assertEqual(body[field], self.invoice[field])
        again = client.post(self.url())
        self.assertEqual(again.status_code, 409)
        self.assertEqual(again.json(), {"detail": "This invoice is already paid."})
        self.assertEqual(Invoice.objects.get(pk=self.invoice["id"]).paid_at.isoformat(), body["paidAt"])

    def test_non_staff_is_403_before_any_lookup(self):
        for user in (self.owner, self.other):
            for url in (self.url(), self.url(987654321, 987654321)):
                with self.subTest(user=user.email, url=url):
                    self.assertEqual(self.as_user(user).post(url).status_code, 403)
        self.assertEqual(Invoice.objects.get(pk=self.invoice["id"]).status, Invoice.Status.OPEN)

    def test_another_accounts_or_unknown_invoice_is_404(self):
        elsewhere = make_account(self.other, name="Other")
        client = self.as_user(self.staff)
        for url in (
            self.url(account_id=elsewhere.pk),
            self.url(invoice_id=987654321),
            f"/api/billing/invoices/{self.account.pk}/abc/pay",
            f"/api/billing/invoices/abc/{self.invoice['id']}/pay",
        ):
            with self.subTest(url=url):
                self.assertEqual(client.post(url).status_code, 404)
        self.assertEqual(Invoice.objects.get(pk=self.invoice["id"]).status, Invoice.Status.OPEN)

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.bearer(None).post(self.url()).status_code, 401)

    def test_the_next_reads_are_fresh_and_exact(self):
        owner = self.as_user(self.owner)
        summary, invoices = f"/api/billing/summary/{self.account.pk}", f"/api/billing/invoices/{self.account.pk}"
        before = owner.get(summary).json()["data"]
        self.assertEqual((before["totalPaid"], before["outstandingBalance"]), ("0.00", "1.00"))
        owner.get(invoices)
        self.as_user(self.staff).post(self.url())
        owner = self.as_user(self.owner)
        after = owner.get(summary).json()
        self.assertFalse(after["fromCache"])
        self.assertEqual(
            (after["data"]["totalPaid"], after["data"]["outstandingBalance"], after["data"]["totalInvoiced"]),
            ("1.00", "0.00", "1.00"),
        )
        listed = owner.get(invoices).json()
        self.assertFalse(listed["fromCache"])
        self.assertEqual(listed["data"][0]["status"], "paid")


class RedisKeyTests(BillingTestCase):
    def test_every_key_has_the_prefix_and_a_ttl_within_its_kind(self):
        make_usage(self.account, units=3)
        client = self.as_user(self.owner)
        for path in ("summary", "usage", "invoices"):
            self.assertEqual(client.get(f"/api/billing/{path}/{self.account.pk}").status_code, 200)
        client.post("/api/billing/usage", {"accountId": self.account.pk, "metric": "api.call", "units": 1})
        self.as_user(self.staff).post(f"/api/billing/invoices/{self.account.pk}")
        for path in ("summary", "usage", "invoices"):
            client.get(f"/api/billing/{path}/{self.account.pk}")

        keys = [k for k in self.redis_keys() if not k.startswith("AuthService_")]
        month = f"{month_start(timezone.now()):%Y-%m}"
        limits = {
            f"BillingService_billing:summary:{self.account.pk}": 15 * 60,
            f"BillingService_billing:usage:{self.account.pk}:{month}": 5 * 60,
            f"BillingService_billing:invoices:{self.account.pk}": 30 * 60,
            f"BillingService_billing:account:{self.account.pk}:gen": 2 * 60 * 60,
        }
        self.assertEqual(sorted(keys), sorted(limits))
        for key in self.redis_keys():
            with self.subTest(key=key):
                self.assertTrue(re.match(r"^(BillingService|AuthService)_", key))
                self.assertGreater(self.redis.ttl(key), 0)
        for key, limit in limits.items():
            self.assertLessEqual(self.redis.ttl(key), limit)
            self.assertGreater(self.redis.ttl(key), limit - 60)


@override_settings(CACHE_BREAKER_COOLDOWN=0.3)
class RedisOutageTests(BillingTestCase):
    def test_billing_answers_from_the_database_and_an_old_dump_cannot_bring_back_stale_figures(self):
        server = test_redis()
        clock = self.enterContext(breaker_clock())
        client = self.as_user(self.owner)
        summary = f"/api/billing/summary/{self.account.pk}"
        client.get(summary)
        self.assertTrue(client.get(summary).json()["fromCache"])
        server.stop(save=True)  # the dump holds the cached summary
        try:
            with self.assertLogs("techbirdsfly.cache", "WARNING"):
                created = client.post(
                    "/api/billing/usage", {"accountId": self.account.pk, "metric": "api.call", "units": 10}
                )
                self.assertEqual(created.status_code, 201)
                during = client.get(summary).json()
            self.assertEqual((during["fromCache"], during["data"]["totalUsageUnits"]), (False, 10))
            self.assertEqual(
                list(
                    CacheJournal.objects.filter(app="billing", scope__startswith="billing:account:").values_list(
                        "scope"
                    )
                ),
                [(f"billing:account:{self.account.pk}",)],
            )
        finally:
            server.start()  # from the old dump, stale summary included
        clock.advance(0.35)  # past the breaker's cooldown
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            after = client.get(summary).json()
        self.assertEqual((after["fromCache"], after["data"]["totalUsageUnits"]), (False, 10))
        # Caching resumes once the invalidation parked during the outage has reached Redis, by a retry in
        # the background. When that bump lands between this read's MGET and its store, the read stores
        # nothing (the generation it read has changed) and the next read fills the entry instead.
        self.assertTrue(poll_until(lambda: not generations.retries.pending(), timeout=10, interval=0.01))
        client.get(summary)
        self.assertTrue(client.get(summary).json()["fromCache"])
