"""The database side of a write: one commit for a write and its journal row, and the direct connection.

A write that changes what is cached also writes a cache journal row (techbirdsfly/cache/journal.py),
from a ``post_save`` receiver or from an invalidating queryset method, right *after* the write's own
statement. Outside a transaction Django commits each statement by itself: the write would commit
first and its journal row second, and a process killed between the two would leave the write durable
and every cached entry it made stale still served until its TTL. ``one_transaction`` and
``SavedWithItsInvalidation`` open a transaction around both when there is none (inside a caller's
transaction they add nothing: the caller's commit is the one commit).

``direct_connection``: PgBouncer in transaction mode hands each transaction to any server connection,
so session state (LISTEN, advisory locks held past a transaction, server-side prepared statements)
does not survive through it. What needs a session of its own connects with ``DATABASE_DIRECT_URL``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dj_database_url
from django.conf import settings
from django.db import connections, models, router, transaction


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


def direct_connection_params() -> dict[str, Any]:
    """psycopg connection parameters of PostgreSQL itself: DATABASE_DIRECT_URL, else the default database's."""
    if settings.DATABASE_DIRECT_URL:
        db = dj_database_url.parse(settings.DATABASE_DIRECT_URL)
    else:
        db = connections["default"].settings_dict
    params = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"]}
    params |= {"port": db["PORT"], "connect_timeout": 5}
    return {key: value for key, value in params.items() if value not in (None, "")}


def direct_connection(*, autocommit: bool = True, application_name: str = "techbirdsfly-direct") -> Any:
    """A new psycopg connection that bypasses PgBouncer (for LISTEN); the caller closes it."""
    import psycopg

    return psycopg.connect(**direct_connection_params(), autocommit=autocommit, application_name=application_name)
