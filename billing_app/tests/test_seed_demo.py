"""seed_demo: a small run works, is consistent and reproducible, and other apps can add stages."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django.http import Http404

from auth_app.models import User
from billing_app.models import Account, Invoice, UsageRecord
from billing_app.selectors import account_summary
from techbirdsfly import seeding
from techbirdsfly.testing import CacheTestCase

SMALL = ["--users=5", "--accounts=8", "--usage=3000", "--large-accounts=1", "--large-account-usage=1000"]
NOW = "--now=2026-05-15T10:00:00+00:00"
DEMO = f"@{seeding.DEMO_DOMAIN}"


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *SMALL, NOW, "--verbosity=0", *args, stdout=out)
    return out.getvalue()


def demo_accounts():
    return Account.objects.filter(owner__email__endswith=DEMO).order_by("pk")


def fingerprint() -> tuple:
    """Everything seeded, with database ids replaced by positions (ids differ from run to run)."""
    accounts = list(demo_accounts().values_list("pk", "owner__email", "name", "plan", "created_at"))
    position = {row[0]: i for i, row in enumerate(accounts)}
    usage = [
        (position[account], metric, units, amount, at, invoice is not None)
        for account, metric, units, amount, at, invoice in UsageRecord.objects.filter(account__in=demo_accounts())
        .order_by("recorded_at", "pk")
        .values_list("account_id", "metric", "units", "amount", "recorded_at", "invoice_id")
    ]
    invoices = [
        (position[account], *rest)
        for account, *rest in Invoice.objects.filter(account__in=demo_accounts())
        .order_by("account_id", "issued_at")
        .values_list("account_id", "amount", "status", "issued_at", "paid_at")
    ]
    users = list(User.objects.filter(email__endswith=DEMO).order_by("email").values_list("email", "name", "is_staff"))
    return [row[1:] for row in accounts], usage, invoices, users


class SeedDemoTests(CacheTestCase):
    def test_a_small_run(self):
        out = seed("--seed=7")
        self.assertEqual(User.objects.filter(email__endswith=DEMO, is_staff=False).count(), 5)
        self.assertTrue(User.objects.filter(email=seeding.STAFF_EMAIL, is_staff=True).exists())
        self.assertEqual(demo_accounts().count(), 8)
        self.assertEqual(UsageRecord.objects.count(), 3000)
        per_account = dict(demo_accounts().annotate(n=Count("usage_records")).values_list("pk", "n"))
        self.assertEqual(per_account[demo_accounts().first().pk], 1000)  # the large account
        self.assertGreater(len(set(per_account.values())), 2)  # skewed, not uniform
        # One password hash, computed once, for every demo user.
        self.assertEqual(User.objects.filter(email__endswith=DEMO).values("password").distinct().count(), 1)
        self.assertIn("3,000 usage records", out)
        self.assertIn(f"log in as {seeding.demo_email(0)} / {seeding.DEMO_PASSWORD}", out)

        invoices = Invoice.objects.filter(account__in=demo_accounts())
        self.assertTrue(invoices.filter(status=Invoice.Status.PAID).exists())
        self.assertTrue(invoices.filter(status=Invoice.Status.OPEN).exists())
        for invoice in invoices:
            total = invoice.usage_records.aggregate(total=Sum("amount"))["total"]
            self.assertEqual(invoice.amount, total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
            self.assertEqual(invoice.number, f"INV-{invoice.pk:06d}")
        for record in UsageRecord.objects.select_related("metric")[:200]:
            self.assertEqual(record.amount, record.units * record.metric.unit_price)

    def test_the_demo_login_works_and_sees_exact_figures(self):
        seed("--seed=7")
        login = self.api.post(
            "/api/auth/login", {"email": seeding.demo_email(0), "password": seeding.DEMO_PASSWORD}, format="json"
        )
        self.assertEqual(login.status_code, 200)
        account = demo_accounts().first()
        data = self.api.bearer(login.json()["accessToken"]).get(f"/api/billing/summary/{account.pk}").json()["data"]
        records = UsageRecord.objects.filter(account=account)
        unbilled = records.filter(invoice__isnull=True).aggregate(total=Sum("amount"))["total"]
        self.assertEqual(data["totalUsageUnits"], records.aggregate(total=Sum("units"))["total"])
        self.assertEqual(data["unbilledAmount"], str(unbilled.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)))
        self.assertEqual(data["invoiceCount"], account.invoices.count())

    def test_the_same_seed_makes_the_same_data_with_copy_or_inserts(self):
        seed("--seed=7")
        first = fingerprint()
        seed("--seed=7", "--reset")
        self.assertEqual(fingerprint(), first)
        seed("--seed=7", "--reset", "--no-copy", "--batch-size=700")
        self.assertEqual(fingerprint(), first)
        seed("--seed=8", "--reset")
        self.assertNotEqual(fingerprint()[1], first[1])
        self.assertEqual(UsageRecord.objects.count(), 3000)  # --reset left nothing behind

    def test_a_second_run_without_reset_does_nothing(self):
        seed("--seed=7")
        before = fingerprint()
        out = seed("--seed=9")
        self.assertIn("already present", out)
        self.assertEqual(fingerprint(), before)

    def test_reset_leaves_other_accounts_alone_and_nothing_stale_in_redis(self):
        other = User.objects.create_user("someone@example.com", "x")
        kept = Account.objects.create(owner=other, name="Not demo")
        seed("--seed=7")
        gone = demo_accounts().first()
        owner = gone.owner
        account_summary(account_id=gone.pk, viewer=owner)
        self.assertTrue(account_summary(account_id=gone.pk, viewer=owner).from_cache)
        with self.captureOnCommitCallbacks(execute=True):
            seed("--seed=7", "--reset")
        staff = User.objects.get(email=seeding.STAFF_EMAIL)
        with self.assertRaises(Http404):
            account_summary(account_id=gone.pk, viewer=staff)
        self.assertTrue(Account.objects.filter(pk=kept.pk).exists())

    def test_bad_options_are_refused(self):
        for args in (
            ["--large-accounts=9"],
            ["--large-account-usage=4000"],
            ["--usage=-1"],
            ["--batch-size=0"],
        ):
            with self.subTest(args=args), self.assertRaises(CommandError):
                seed(*args)
        with self.assertRaises(CommandError):
            call_command("seed_demo", "--users=0", "--accounts=2", "--usage=0", "--large-accounts=0", verbosity=0)


class StageExtensionTests(CacheTestCase):
    def test_another_apps_stage_runs_with_its_option_and_resets_first(self):
        calls = []

        def run(ctx: seeding.SeedContext) -> str:
            calls.append(("run", len(ctx.users), ctx.option("widgets"), ctx.rng("widgets").random()))
            return f"{ctx.option('widgets')} widgets"

        def reset(ctx: seeding.SeedContext) -> None:
            calls.append(("reset", Account.objects.filter(owner__in=ctx.demo_users()).count()))

        stage = seeding.Stage(
            "widgets", run, reset, options=(seeding.StageOption("--widgets", 3, "widgets to create"),)
        )
        seeding.register(stage)
        self.addCleanup(seeding.unregister, "widgets")
        out = seed("--seed=7")
        seed("--seed=7", "--reset", "--widgets=4")
        self.assertIn("3 widgets", out)
        self.assertEqual(calls[0][:3], ("run", 5, 3))
        # Reset runs in reverse order: this stage's reset sees the billing rows still there.
        self.assertEqual(calls[1], ("reset", 8))
        self.assertEqual(calls[2][:3], ("run", 5, 4))
        self.assertEqual(calls[0][3], calls[2][3])  # its random numbers depend only on --seed and its name
