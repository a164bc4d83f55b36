"""Reads of the billing app, cached in the ``billing`` alias.

Each cached entry is ``{"ownerId": ..., "data": ...}``: the owner travels with the data so that a
hit checks access without a query (a change of owner invalidates the account like any other
change). On a miss the account is looked up, and a caller who may not see it gets a 404 before
any aggregate runs, so nothing is computed or cached on their behalf.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypedDict

from django.db.models import Count, Q, Sum
from django.http import Http404
from django.utils import timezone

from techbirdsfly.cache import Cached, EntryRef, get_or_compute
from techbirdsfly.paging import Listing, Page, owner_page

from . import cache
from .aggregates import MoneySum
from .models import Account, Invoice, UsageRecord
from .money import cents, iso, month_start, next_month
from .serializers import account_data, invoice_data


class Viewer(Protocol):
    """What access checks need of a user; ``request.user`` (built from the token record) is one."""

    pk: int
    is_staff: bool


class Summary(TypedDict):
    accountId: int
    name: str
    plan: str
    currency: str
    totalUsageUnits: int
    unbilledAmount: str
    totalInvoiced: str
    totalPaid: str
    outstandingBalance: str
    invoiceCount: int
    computedAt: str


class MonthUsage(TypedDict):
    accountId: int
    periodStart: str
    periodEnd: str
    totalUnits: int
    byMetric: dict[str, int]


def _may_see(owner_id: int, viewer: Viewer) -> bool:
    return viewer.is_staff or owner_id == viewer.pk


def _not_found() -> Http404:
    return Http404("Account not found.")


def account_get(*, account_id: int, viewer: Viewer) -> Account:
    """The account if ``viewer`` may see it (its owner or staff); Http404 otherwise, as if it did not exist."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None or not _may_see(account.owner_id, viewer):
        raise _not_found()
    return account


def _cached_for_viewer(
    entry: EntryRef, *, account_id: int, viewer: Viewer, compute: Callable[[Account], Any]
) -> Cached[Any]:
    def envelope() -> dict[str, Any]:
        account = account_get(account_id=account_id, viewer=viewer)
        return {"ownerId": account.owner_id, "data": compute(account)}

    result = get_or_compute(entry.kind, entry.key, envelope, scope=entry.scope)
    if not _may_see(result.value["ownerId"], viewer):
        raise _not_found()
    return Cached(result.value["data"], result.from_cache)


# --- the caller's accounts ------------------------------------------------------------------------


def account_list(*, viewer: Viewer, limit: int, cursor: str | None = None) -> Cached[Page]:
    """The viewer's own accounts, newest first, one page (techbirdsfly/paging.py); staff see their own too."""
    return owner_page(
        entry=cache.accounts_entry(viewer.pk),
        listing=Listing(cache.ACCOUNTS, viewer.pk),
        rows=Account.objects.filter(owner_id=viewer.pk),
        data=account_data,
        limit=limit,
        cursor=cursor,
    )


# --- summary -------------------------------------------------------------------------------------


def _summary(account: Account) -> Summary:
    # Two aggregate queries, each an index scan of this one account (see the indexes in models.py).
    usage = UsageRecord.objects.filter(account_id=account.pk).aggregate(
        units=Sum("units"),
        unbilled=MoneySum("amount", filter=Q(invoice__isnull=True)),
    )
    invoices = Invoice.objects.filter(account_id=account.pk).aggregate(
        count=Count("id"),
        invoiced=MoneySum("amount"),
        paid=MoneySum("amount", filter=Q(status=Invoice.Status.PAID)),
        open=MoneySum("amount", filter=Q(status=Invoice.Status.OPEN)),
    )
    return Summary(
        accountId=account.pk,
        name=account.name,
        plan=account.plan,
        currency=account.currency,
        totalUsageUnits=int(usage["units"] or 0),
        unbilledAmount=cents(usage["unbilled"]),
        totalInvoiced=cents(invoices["invoiced"]),
        totalPaid=cents(invoices["paid"]),
        outstandingBalance=cents(invoices["open"]),
        invoiceCount=invoices["count"],
        computedAt=iso(timezone.now()),
    )


def account_summary(*, account_id: int, viewer: Viewer) -> Cached[Summary]:
    return _cached_for_viewer(cache.summary_entry(account_id), account_id=account_id, viewer=viewer, compute=_summary)


# --- this month's usage ----------------------------------------------------------------------------


def _month_usage(account: Account, start: datetime) -> MonthUsage:
    end = next_month(start)
    rows = (
        UsageRecord.objects.filter(account_id=account.pk, recorded_at__gte=start, recorded_at__lt=end)
        .values("metric")
        .annotate(units=Sum("units"))
        .order_by("metric")
    )
    by_metric = {row["metric"]: int(row["units"]) for row in rows}
    return MonthUsage(
        accountId=account.pk,
        periodStart=iso(start),
        periodEnd=iso(end),
        totalUnits=sum(by_metric.values()),
        byMetric=by_metric,
    )


def account_usage(*, account_id: int, viewer: Viewer, at: datetime | None = None) -> Cached[MonthUsage]:
    """The usage of the calendar month (UTC) of ``at`` (default: now), by metric."""
    # One instant for both the key and the query, so an entry never holds another month's figures.
    start = month_start(at or timezone.now())
    return _cached_for_viewer(
        cache.usage_entry(account_id, f"{start:%Y-%m}"),
        account_id=account_id,
        viewer=viewer,
        compute=lambda account: _month_usage(account, start),
    )


# --- invoices --------------------------------------------------------------------------------------


def account_invoices(*, account_id: int, viewer: Viewer) -> Cached[list[dict[str, Any]]]:
    """The account's invoices, newest first."""

    def compute(account: Account) -> list[dict[str, Any]]:
        invoices = Invoice.objects.filter(account_id=account.pk).order_by("-issued_at", "-id")
        return [invoice_data(invoice) for invoice in invoices]

    return _cached_for_viewer(cache.invoices_entry(account_id), account_id=account_id, viewer=viewer, compute=compute)
