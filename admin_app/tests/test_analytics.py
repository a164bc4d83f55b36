"""GET /api/admin/analytics/dashboard: site-wide aggregates, cached 5 minutes without a scope."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from admin_app import selectors
from billing_app.models import Account, Invoice, UsageRecord
from image_app.models import Image

from .factories import make_user
from .test_cache_api import AdminTestCase


class DashboardAnalyticsTests(AdminTestCase):
    def make_data(self) -> None:
        now = timezone.now()
        owner = make_user()
        make_user(date_joined=now - timedelta(days=3))  # not new
        account = Account.objects.create(owner=owner, name="Acme")
        Account.objects.create(owner=owner, name="Acme 2")
        UsageRecord.objects.create(account=account, metric_id="api.call", units=1500, amount=Decimal("1.5000"))
        UsageRecord.objects.create(account=account, metric_id="image.generate", units=7, amount=Decimal("0.2800"))
        UsageRecord.objects.create(
            account=account,
            metric_id="api.call",
            units=99,
            amount=Decimal("0.0990"),
            recorded_at=now - timedelta(hours=25),  # outside the last 24 h
        )
        Invoice.objects.create(account=account, amount=Decimal("10.25"), status=Invoice.Status.PAID, paid_at=now)
        Invoice.objects.create(account=account, amount=Decimal("2.50"))
        Invoice.objects.create(account=account, amount=Decimal("0.01"))
        for status in ["queued", "queued", "completed", "failed"]:
            Image.objects.create(owner=owner, prompt="a bird", width=64, height=64, status=status)

    def test_aggregates(self):
        self.make_data()
        response = self.api.get("/api/admin/analytics/dashboard")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertFalse(body["fromCache"])
        data = body["data"]
        # The staff user of setUp, the owner and the older user; two joined within 24 h plus the staff user.
        self.assertEqual(data["users"], {"total": 3, "newLast24h": 2})
        self.assertEqual(data["accounts"], {"total": 2})
        self.assertEqual(data["billing"], {"totalInvoiced": "12.76", "totalPaid": "10.25", "outstanding": "2.51"})
        self.assertEqual(data["usage"]["unitsLast24h"], 1507)
        self.assertEqual(data["usage"]["byMetric"], {"api.call": 1500, "image.generate": 7, "storage.gb_day": 0})
        self.assertEqual(data["images"]["total"], 4)
        self.assertEqual(data["images"]["byStatus"], {"queued": 2, "running": 0, "completed": 1, "failed": 1})
        self.assertIn("+00:00", data["computedAt"])

    def test_empty_database_gives_zeros_as_money_strings(self):
        data = self.api.get("/api/admin/analytics/dashboard").json()["data"]
        self.assertEqual(data["billing"], {"totalInvoiced": "0.00", "totalPaid": "0.00", "outstanding": "0.00"})
        self.assertEqual(data["images"]["total"], 0)
        self.assertEqual(data["usage"]["unitsLast24h"], 0)

    def test_cached_five_minutes_under_the_admin_prefix(self):
        first = self.api.get("/api/admin/analytics/dashboard").json()
        self.assertEqual(self.redis.keys("AdminService_admin:dashboard"), [b"AdminService_admin:dashboard"])
        self.assertTrue(0 < self.redis.ttl("AdminService_admin:dashboard") <= 300)
        self.make_data()
        second = self.api.get("/api/admin/analytics/dashboard").json()
        self.assertTrue(second["fromCache"])
        # TTL-bound, not invalidated: the new rows show only after the entry expires (or is cleared).
        self.assertEqual(second["data"], first["data"])

    def test_a_hit_makes_no_query(self):
        selectors.dashboard_analytics()
        with self.assertNumQueries(0):
            self.assertTrue(selectors.dashboard_analytics().from_cache)

    def test_clearing_the_admin_cache_recomputes(self):
        self.api.get("/api/admin/analytics/dashboard")
        self.make_data()
        self.assertEqual(self.api.delete("/api/admin/cache/admin").json(), {"app": "admin", "deleted": 1})
        body = self.api.get("/api/admin/analytics/dashboard").json()
        self.assertFalse(body["fromCache"])
        self.assertEqual(body["data"]["accounts"]["total"], 2)
