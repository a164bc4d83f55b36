"""Accounts, the price list, metered usage and invoices. Money is ``Decimal`` everywhere.

Every way the ORM can change a row makes the owning account's cached reads stale: ``save`` and
``delete`` through the signals in cache.py, ``QuerySet.update``/``delete``/``bulk_create``/
``bulk_update`` (which send no signals) through the querysets below.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from techbirdsfly.db import SavedWithItsInvalidation, one_transaction

MAX_UNITS = 1_000_000  # API.md: units is a positive integer up to a million per record


def _target_id(kwargs: dict, field: str) -> int | None:
    """The id an ``update(**kwargs)`` sets ``field`` (a foreign key) to, if it sets one."""
    target = kwargs.get(field, kwargs.get(f"{field}_id"))
    target_id = getattr(target, "pk", target)
    return target_id if isinstance(target_id, int) else None


class _InvalidatingQuerySet(models.QuerySet):
    """A QuerySet whose signal-less bulk writes still make the affected accounts' cache stale.

    With ``owner_field``, the owners' account lists too (the rows are accounts).
    """

    account_field = "account_id"
    owner_field: str | None = None

    def _ids(self, field: str) -> set[int]:
        return set(self.order_by().values_list(field, flat=True).distinct())

    def _invalidate(self, account_ids, owner_ids=()) -> None:
        from .cache import invalidate_accounts

        invalidate_accounts(account_ids, owner_ids)

    def _owners_of(self, objs) -> set[int]:
        if self.owner_field is None:
            return set()
        # Both owners of an account moved in a bulk_update (its loaded owner is remembered, see Account).
        return {
            getattr(obj, field)
            for obj in objs
            for field in (self.owner_field, "loaded_owner_id")
            if hasattr(obj, field)
        }

    @one_transaction
    def update(self, **kwargs):
        account_ids = self._ids(self.account_field)
        owner_ids = self._ids(self.owner_field) if self.owner_field else set()
        # An update may move rows to another account (or accounts to another owner): both sides are stale.
        account_ids.add(_target_id(kwargs, "account"))
        if self.owner_field:
            owner_ids.add(_target_id(kwargs, "owner"))
        updated = super().update(**kwargs)
        self._invalidate(account_ids, owner_ids)
        return updated

    @one_transaction
    def delete(self):
        account_ids = self._ids(self.account_field)
        result = super().delete()
        self._invalidate(account_ids)
        return result

    @one_transaction
    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        self._invalidate({getattr(obj, self.account_field) for obj in objs}, self._owners_of(objs))
        return objs

    @one_transaction
    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        updated = super().bulk_update(objs, fields, *args, **kwargs)
        self._invalidate({getattr(obj, self.account_field) for obj in objs}, self._owners_of(objs))
        return updated


class _RemembersAccount(SavedWithItsInvalidation, models.Model):
    """Remembers the account a row was loaded with, so moving it to another account invalidates both."""

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.loaded_account_id = instance.__dict__.get("account_id")
        return instance


class AccountQuerySet(_InvalidatingQuerySet):
    account_field = "pk"
    owner_field = "owner_id"

    @one_transaction
    def bulk_create(self, objs, *args, **kwargs):
        # New accounts have nothing cached of their own (ids are never reused); their owners' lists have.
        objs = models.QuerySet.bulk_create(self, objs, *args, **kwargs)
        self._invalidate((), self._owners_of(objs))
        return objs


class Account(SavedWithItsInvalidation, models.Model):
    class Plan(models.TextChoices):
        FREE = "free"
        PRO = "pro"
        ENTERPRISE = "enterprise"

    # The only currency the price list is in; one source for the serializer's choices.
    CURRENCIES = ("USD",)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing_accounts")
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=10, choices=Plan.choices, default=Plan.FREE)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES], default="USD")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @classmethod
    def from_db(cls, db, field_names, values):
        # Remembers the owner it was loaded with, so moving it to another owner makes both lists stale.
        instance = super().from_db(db, field_names, values)
        instance.loaded_owner_id = instance.__dict__.get("owner_id")
        return instance


class Price(models.Model):
    """The unit price of one metric: the price list of API.md (seeded by migration 0002)."""

    metric = models.CharField(max_length=64, primary_key=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=4)

    class Meta:
        ordering = ["metric"]
        constraints = [models.CheckConstraint(condition=Q(unit_price__gte=0), name="price_unit_price_not_negative")]

    def __str__(self) -> str:
        return f"{self.metric} @ {self.unit_price}"


class InvoiceQuerySet(_InvalidatingQuerySet):
    pass


class Invoice(_RemembersAccount):
    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invoices", db_index=False)
    # "INV-000042", from the primary key; null only inside the transaction that creates the invoice.
    number = models.CharField(max_length=32, unique=True, null=True, editable=False)
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    status = models.CharField(max_length=4, choices=Status.choices, default=Status.OPEN)
    issued_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        indexes = [
            # The invoice list (newest first) and the summary's per-status totals of one account.
            models.Index(fields=["account", "-issued_at"], name="invoice_account_issued_idx"),
        ]

    def __str__(self) -> str:
        return self.number or f"invoice #{self.pk}"

    @staticmethod
    def number_for(pk: int) -> str:
        return f"INV-{pk:06d}"


class UsageRecordQuerySet(_InvalidatingQuerySet):
    pass


class UsageRecord(_RemembersAccount):
    """``units`` of ``metric`` used by an account; ``amount`` = units * the unit price then in force."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_records", db_index=False)
    # The price list's primary key is the metric name, so the column holds e.g. "api.call".
    metric = models.ForeignKey(Price, on_delete=models.PROTECT, db_column="metric", db_index=False)
    units = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=16, decimal_places=4)
    recorded_at = models.DateTimeField(default=timezone.now)
    # Set once the record is billed; deleting (voiding) the invoice makes its usage unbilled again.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records", db_index=False
    )
    # What the usage is for, when it is recorded by the service that did the work (``image:17``):
    # unique, so the database itself refuses to record one piece of work twice.
    source = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = UsageRecordQuerySet.as_manager()

    class Meta:
        indexes = [
            # Covering indexes (trailing key columns rather than INCLUDE, which only PostgreSQL has), so
            # an account's figures come from index-only scans even with hundreds of thousands of rows:
            # the summary's totals and the unbilled usage an invoice takes ...
            models.Index(fields=["account", "invoice", "units", "amount"], name="usage_account_invoice_idx"),
            # ... and this month's usage by metric.
            models.Index(fields=["account", "recorded_at", "metric", "units"], name="usage_account_recorded_idx"),
            # An invoice's usage (its total, and un-billing it when it is deleted); unbilled rows are left out.
            models.Index(fields=["invoice"], condition=Q(invoice__isnull=False), name="usage_invoice_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(units__gte=1) & Q(units__lte=MAX_UNITS), name="usage_units_between_1_and_max"
            ),
            # Partial: usage posted through the API has no source, and the index stays small.
            models.UniqueConstraint(fields=["source"], condition=Q(source__isnull=False), name="usage_source_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.units} * {self.metric_id} for account {self.account_id}"

    @one_transaction
    def delete(self, *args, **kwargs):
        # No post_delete receiver for usage: one would stop Django from deleting an account's
        # usage in a single statement (it would load every row to send the signal).
        from .cache import invalidate_accounts

        result = super().delete(*args, **kwargs)
        invalidate_accounts([self.account_id])
        return result
