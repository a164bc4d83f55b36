"""Request bodies (validated strictly), the JSON shapes of answers, and their OpenAPI descriptions.

Answers are built by the plain ``*_data`` functions, one per shape, so that a cached read and a
write's answer can never disagree on a field; the Serializer classes at the end only document them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from techbirdsfly.converters import BIGINT_MAX
from techbirdsfly.fields import StrictIntegerField

from .models import MAX_UNITS, Account, Invoice, UsageRecord
from .money import cents, iso, usage_amount

# --- request bodies --------------------------------------------------------------------------------


class AccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    plan = serializers.ChoiceField(choices=Account.Plan.choices, default=Account.Plan.FREE)
    currency = serializers.ChoiceField(choices=Account.CURRENCIES, default=Account.CURRENCIES[0])


class UsageCreateSerializer(serializers.Serializer):
    accountId = StrictIntegerField(min_value=1, max_value=BIGINT_MAX, source="account_id")
    # Whether the metric is on the price list is the service's check (the list is in the database).
    metric = serializers.CharField(max_length=64)
    units = StrictIntegerField(min_value=1, max_value=MAX_UNITS)


# --- answers ---------------------------------------------------------------------------------------


def account_data(account: Account) -> dict[str, Any]:
    return {
        "id": account.pk,
        "name": account.name,
        "plan": account.plan,
        "currency": account.currency,
        "createdAt": iso(account.created_at),
    }


def usage_record_data(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.pk,
        "accountId": record.account_id,
        "metric": record.metric_id,
        "units": record.units,
        "amount": usage_amount(record.amount),
        "recordedAt": iso(record.recorded_at),
    }


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "accountId": invoice.account_id,
        "number": invoice.number,
        "amount": cents(invoice.amount),
        "status": invoice.status,
        "issuedAt": iso(invoice.issued_at),
        "paidAt": iso(invoice.paid_at),
    }


# --- OpenAPI descriptions of the answers ---------------------------------------------------------


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    plan = serializers.ChoiceField(choices=Account.Plan.choices)
    currency = serializers.CharField()
    createdAt = serializers.DateTimeField()


class UsageRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    accountId = serializers.IntegerField()
    metric = serializers.CharField()
    units = serializers.IntegerField()
    amount = serializers.CharField(help_text='Exact: units * unit price, four places ("1.1550").')
    recordedAt = serializers.DateTimeField()


class InvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    accountId = serializers.IntegerField()
    number = serializers.CharField(help_text='e.g. "INV-000042"')
    amount = serializers.CharField(help_text='Two places ("12.50").')
    status = serializers.ChoiceField(choices=Invoice.Status.choices)
    issuedAt = serializers.DateTimeField()
    paidAt = serializers.DateTimeField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    accountId = serializers.IntegerField()
    name = serializers.CharField()
    plan = serializers.CharField()
    currency = serializers.CharField()
    totalUsageUnits = serializers.IntegerField(help_text="Every unit ever recorded on the account.")
    unbilledAmount = serializers.CharField(help_text="Usage not yet on an invoice, rounded half-up to cents.")
    totalInvoiced = serializers.CharField()
    totalPaid = serializers.CharField()
    outstandingBalance = serializers.CharField(help_text="The total of open invoices.")
    invoiceCount = serializers.IntegerField()
    computedAt = serializers.DateTimeField()


class MonthUsageSerializer(serializers.Serializer):
    accountId = serializers.IntegerField()
    periodStart = serializers.DateTimeField(help_text="The first instant of the current calendar month, UTC.")
    periodEnd = serializers.DateTimeField(help_text="The first instant of the next month (exclusive).")
    totalUnits = serializers.IntegerField()
    byMetric = serializers.DictField(child=serializers.IntegerField())


class CachedSummarySerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = SummarySerializer()


class CachedMonthUsageSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = MonthUsageSerializer()


class AccountPageSerializer(serializers.Serializer):
    items = AccountSerializer(many=True, help_text="The caller's own accounts, newest first.")
    next = serializers.CharField(allow_null=True, help_text="The cursor of the following page; null on the last.")


class CachedAccountPageSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = AccountPageSerializer()


class CachedInvoicesSerializer(serializers.Serializer):
    fromCache = serializers.BooleanField()
    data = InvoiceSerializer(many=True)
