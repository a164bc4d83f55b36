"""Small factories for billing tests (and for other apps' tests that need billing rows)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from auth_app.tests.factories import make_token, make_user
from billing_app.models import Account, Invoice, Price, UsageRecord

__all__ = ["PRICES", "make_account", "make_invoice", "make_token", "make_usage", "make_user"]

# API.md's price list, as the data migration seeds it.
PRICES = {"api.call": Decimal("0.0010"), "image.generate": Decimal("0.0400"), "storage.gb_day": Decimal("0.0050")}


def make_account(owner, *, name: str = "Acme", plan: str = Account.Plan.PRO) -> Account:
    return Account.objects.create(owner=owner, name=name, plan=plan)


def make_usage(
    account: Account,
    *,
    metric: str = "api.call",
    units: int = 1,
    recorded_at: datetime | None = None,
    invoice: Invoice | None = None,
) -> UsageRecord:
    price = Price.objects.get(pk=metric).unit_price
    return UsageRecord.objects.create(
        account=account,
        metric_id=metric,
        units=units,
        amount=units * price,
        recorded_at=recorded_at or timezone.now(),
        invoice=invoice,
    )


def make_invoice(account: Account, *, amount: str = "10.00", status: str = Invoice.Status.OPEN, **extra) -> Invoice:
    invoice = Invoice.objects.create(account=account, amount=Decimal(amount), status=status, **extra)
    invoice.number = Invoice.number_for(invoice.pk)
    invoice.save(update_fields=["number"])
    return invoice
