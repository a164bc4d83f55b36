"""The billing app's cache keys and invalidation (alias ``billing``, prefix ``BillingService``).

An account's three cached reads (summary, this month's usage, invoice list) share one scope,
``billing:account:{id}``: any write that touches the account, its usage or its invoices makes all
three stale. The first page of an owner's account list has the owner's scope,
``billing:owner:{id}``: creating, changing or deleting one of their accounts (or moving it to
another owner: both) makes it stale. Writes made with ``save``/``delete`` reach us through the
signals below; the bulk paths that send no signal invalidate through the querysets in models.py.

Price changes invalidate nothing: a usage record keeps the amount computed at the price in force
when it was recorded, and no cached read shows a price.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from techbirdsfly.cache import EntryRef, invalidate

from .models import Account, Invoice, UsageRecord

APP = "billing"
SUMMARY = "billing.summary"
USAGE = "billing.usage"
INVOICES = "billing.invoices"
ACCOUNTS = "billing.accounts"


def summary_key(account_id: int) -> str:
    return f"billing:summary:{account_id}"


def usage_key(account_id: int, month: str) -> str:
    # The month is part of the key so that a new month never serves last month's figures.
    return f"billing:usage:{account_id}:{month}"


def invoices_key(account_id: int) -> str:
    return f"billing:invoices:{account_id}"


def accounts_key(owner_id: int) -> str:
    return f"billing:accounts:{owner_id}"


def account_scope(account_id: int) -> str:
    return f"billing:account:{account_id}"


def owner_scope(owner_id: int) -> str:
    return f"billing:owner:{owner_id}"


def summary_entry(account_id: int) -> EntryRef:
    return EntryRef(SUMMARY, summary_key(account_id), account_scope(account_id))


def usage_entry(account_id: int, month: str) -> EntryRef:
    return EntryRef(USAGE, usage_key(account_id, month), account_scope(account_id))


def invoices_entry(account_id: int) -> EntryRef:
    return EntryRef(INVOICES, invoices_key(account_id), account_scope(account_id))


def accounts_entry(owner_id: int) -> EntryRef:
    return EntryRef(ACCOUNTS, accounts_key(owner_id), owner_scope(owner_id))


def _ids(ids: Iterable[int | None]) -> list[int]:
    return sorted({i for i in ids if i is not None})


def invalidate_accounts(account_ids: Iterable[int | None], owner_ids: Iterable[int | None] = ()) -> None:
    """Make every cached read of these accounts, and these owners' account lists, stale once the
    current transaction commits."""
    scopes = [account_scope(i) for i in _ids(account_ids)] + [owner_scope(i) for i in _ids(owner_ids)]
    invalidate(APP, *scopes)


@receiver(post_save, sender=Account)
@receiver(post_delete, sender=Account)
def _account_changed(sender, instance: Account, created: bool = False, **kwargs) -> None:
    owners = [instance.owner_id, getattr(instance, "loaded_owner_id", None)]
    # A new account has nothing cached of its own (ids are never reused), but its owner's list has.
    invalidate_accounts([] if created else [instance.pk], owners)


@receiver(post_delete, sender=Invoice)
@receiver(post_save, sender=Invoice)
@receiver(post_save, sender=UsageRecord)
def _row_changed(sender, instance: Invoice | UsageRecord, **kwargs) -> None:
    # A row moved to another account (say in the admin) changes both accounts' figures.
    invalidate_accounts([instance.account_id, getattr(instance, "loaded_account_id", None)])
