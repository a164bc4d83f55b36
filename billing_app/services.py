"""Writes of the billing app: accounts, recorded usage, issuing and paying invoices.

Cache invalidation is not called here: every write below goes through ``save`` (the post_save
receivers in cache.py) or through the invalidating querysets of models.py, and both invalidate
the account's scope once the transaction commits.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError

from .aggregates import MoneySum
from .models import Account, Invoice, Price, UsageRecord
from .money import to_cents
from .selectors import Viewer, account_get


class NothingToBill(APIException):
    status_code = 409
    default_detail = "This account has no unbilled usage."
    default_code = "nothing_to_bill"


class AlreadyPaid(APIException):
    status_code = 409
    default_detail = "This invoice is already paid."
    default_code = "already_paid"


class TooManyAccounts(APIException):
    status_code = 409
    default_code = "account_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(f"You already have {limit} billing accounts, the most one user may have.")


def account_create(*, owner: Viewer, name: str, plan: str, currency: str) -> Account:
    """Create an account for ``owner``; TooManyAccounts when they have BILLING_ACCOUNT_LIMIT already."""
    with transaction.atomic():
        # The owner's row lock makes their concurrent creations take turns, so two cannot both pass
        # the count at limit - 1 (NO KEY: rows that merely reference the user are not held up).
        get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).first()
        limit = settings.BILLING_ACCOUNT_LIMIT
        if Account.objects.filter(owner_id=owner.pk).count() >= limit:
            raise TooManyAccounts(limit)
        return Account.objects.create(owner_id=owner.pk, name=name, plan=plan, currency=currency)


def _price(metric: str) -> Price:
    price = Price.objects.filter(pk=metric).first()
    if price is None:
        known = ", ".join(Price.objects.values_list("metric", flat=True))
        raise ValidationError({"metric": [f"Unknown metric {metric!r}; expected one of: {known}."]})
    return price


def usage_record_create(*, viewer: Viewer, account_id: int, metric: str, units: int) -> UsageRecord:
    """Record usage on an account ``viewer`` may see; Http404 otherwise, 400 for a metric not on the price list."""
    price = _price(metric)
    account = account_get(account_id=account_id, viewer=viewer)
    with transaction.atomic():  # the record and its journal row (post_save) commit together
        return UsageRecord.objects.create(
            account_id=account.pk, metric_id=price.pk, units=units, amount=units * price.unit_price
        )


def usage_record_once(*, account_id: int, metric: str, units: int, source: str) -> UsageRecord:
    """Record usage for a piece of work (``source``, e.g. ``image:17``) unless it is recorded already.

    For services that did the work and checked access themselves. Priced and invalidated like
    ``usage_record_create``; ``source`` is unique in the database, so however often (or however
    concurrently) the work is reported, one record exists. Call it in the transaction that marks
    the work done, so the two commit together or not at all.
    """
    existing = UsageRecord.objects.filter(source=source).first()
    if existing is not None:
        return existing
    price = _price(metric)
    try:
        with transaction.atomic():
            return UsageRecord.objects.create(
                account_id=account_id, metric_id=price.pk, units=units, amount=units * price.unit_price, source=source
            )
    except IntegrityError:  # a concurrent transaction recorded it first (and has committed)
        return UsageRecord.objects.get(source=source)


def invoice_issue(*, account_id: int) -> Invoice:
    """Bill all of the account's unbilled usage on one new invoice; NothingToBill when there is none."""
    with transaction.atomic():
        # The row lock makes concurrent runs for one account take turns, so the second finds nothing
        # left to bill instead of issuing an empty invoice. (The UPDATE below re-checks
        # "invoice IS NULL" on rows a concurrent run changed, so no row could be billed twice anyway.)
        account = Account.objects.select_for_update().filter(pk=account_id).first()
        if account is None:
            raise Http404("Account not found.")
        unbilled = UsageRecord.objects.filter(account_id=account.pk, invoice__isnull=True)
        if not unbilled.exists():
            raise NothingToBill()
        invoice = Invoice.objects.create(account=account, amount=0, issued_at=timezone.now())
        unbilled.update(invoice=invoice)
        # Summed over exactly the rows just billed: usage committed after exists() is either on this
        # invoice and in its amount, or left for the next one; never billed without being charged.
        total = UsageRecord.objects.filter(account_id=account.pk, invoice=invoice).aggregate(total=MoneySum("amount"))
        invoice.amount = to_cents(total["total"])
        invoice.number = Invoice.number_for(invoice.pk)
        invoice.save(update_fields=["amount", "number"])
    return invoice


def invoice_pay(*, account_id: int, invoice_id: int) -> Invoice:
    """Mark an open invoice of the account paid; Http404 for another account's, AlreadyPaid for a paid one."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id, account_id=account_id).first()
        if invoice is None:
            raise Http404("Invoice not found.")
        if invoice.status == Invoice.Status.PAID:
            raise AlreadyPaid()
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = timezone.now()
        invoice.save(update_fields=["status", "paid_at"])
    return invoice
