"""The Django admin for billing. Every change made here invalidates the account's cached reads
(signals and querysets, see cache.py and models.py); these classes only keep derived fields right
and the usage list fast on millions of rows."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from .models import Account, Invoice, Price, UsageRecord


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "plan", "currency", "created_at")
    list_filter = ("plan",)
    search_fields = ("name", "owner__email")
    raw_id_fields = ("owner",)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("metric", "unit_price")


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("number", "account", "amount", "status", "issued_at", "paid_at")
    list_filter = ("status",)
    search_fields = ("number",)
    raw_id_fields = ("account",)
    # The amount is the sum of the usage the invoice bills; it is set when the invoice is issued.
    readonly_fields = ("number", "amount")
    actions = ["mark_paid"]

    def save_model(self, request, obj: Invoice, form, change: bool) -> None:
        if obj.status == Invoice.Status.PAID and obj.paid_at is None:
            obj.paid_at = timezone.now()
        elif obj.status == Invoice.Status.OPEN:
            obj.paid_at = None
        super().save_model(request, obj, form, change)

    @admin.action(description="Mark selected invoices paid")
    def mark_paid(self, request, queryset) -> None:
        # InvoiceQuerySet.update invalidates the accounts (QuerySet.update sends no signal).
        updated = queryset.filter(status=Invoice.Status.OPEN).update(status=Invoice.Status.PAID, paid_at=timezone.now())
        self.message_user(request, f"{updated} invoice(s) marked paid.")


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "metric", "units", "amount", "recorded_at", "invoice")
    list_filter = ("metric",)
    raw_id_fields = ("account", "invoice")
    readonly_fields = ("amount",)
    list_select_related = ("account", "invoice")
    # Counting millions of rows twice per page view would make the list slow.
    show_full_result_count = False

    def save_model(self, request, obj: UsageRecord, form, change: bool) -> None:
        # Keep amount = units * unit price; an edit is priced at today's price.
        if not change or {"units", "metric"} & set(form.changed_data):
            obj.amount = obj.units * obj.metric.unit_price
        super().save_model(request, obj, form, change)
