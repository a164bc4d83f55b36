"""The database side of a write: one commit for a write and its journal row.

A write that changes what is cached also writes a cache journal row (techbirdsfly/cache/journal.py),
from a ``post_save`` receiver or from an invalidating queryset method, right *after* the write's own
statement. Outside a transaction Django commits each statement by itself: the write would commit
first and its journal row second, and a process killed between the two would leave the write durable
and every cached entry it made stale still served until its TTL. ``one_transaction`` and
``SavedWithItsInvalidation`` open a transaction around both when there is none (inside a caller's
transaction they add nothing: the caller's commit is the one commit).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import models, router, transaction


def _alias(target: Any, kwargs: dict[str, Any]) -> str:
    if isinstance(target, models.QuerySet):
        return target.db
    return kwargs.get("using") or router.db_for_write(type(target), instance=target)


def one_transaction[F: Callable[..., Any]](method: F) -> F:
    """Run a queryset or model method that writes and then invalidates in one transaction.

    Inside a caller's transaction it opens none: the caller's commit is already the one commit (and a
    TestCase's own blocks keep behaving as autocommit does for generations.invalidate).
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        using = _alias(self, kwargs)
        if transaction.get_connection(using).in_atomic_block:
            return method(self, *args, **kwargs)
        with transaction.atomic(using=using):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class SavedWithItsInvalidation:
    """A model mixin: ``save`` and its ``post_save`` receivers (the journal row) commit together.

    Django sends ``post_save`` after the transaction it opens for a save has ended (it opens none for
    a model without parents), so the receivers' writes would otherwise commit on their own.
    """

    @one_transaction
    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)  # type: ignore[misc]
