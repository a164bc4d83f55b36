"""A request's dealings with Redis, held for it from its start to its end: its budget and its one read.

One ``RequestScope`` per request, opened and closed around the whole request by
``RequestCacheMiddleware`` (middleware.py) and kept in a context variable: requests whose sync parts
share a thread (ASGI runs a chain of sync middleware on one thread, and an async middleware lets
another request in between) each keep their own. Outside a request (management commands, workers,
tests calling the layer directly) there is none: nothing is charged to a budget, nothing read ahead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any


class RequestScope:
    """The time a request has waited on Redis (``spent``), its read-ahead (readahead.RequestRead) and
    the meter of the Redis call it is making (metering.Meter).

    A context manager: the request's scope from ``__enter__`` to ``__exit__``, which closes it.
    """

    __slots__ = ("_token", "meter", "read", "spent")

    def __init__(self) -> None:
        self.spent = 0.0
        self.read: Any = None
        self.meter: Any = None  # the Meter of the Redis call being made (calls.redis_call), if any
        self._token: Token[RequestScope | None] | None = None

    def close(self) -> None:
        """The one release path of what the request holds: a read whose answer was never taken."""
        read, self.read = self.read, None
        if read is not None:
            read.close()

    def __enter__(self) -> RequestScope:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.close()
        finally:
            _current.reset(self._token)  # type: ignore[arg-type]


_current: ContextVar[RequestScope | None] = ContextVar("techbirdsfly_cache_request", default=None)
_unbudgeted: ContextVar[bool] = ContextVar("techbirdsfly_cache_unbudgeted", default=False)


def current() -> RequestScope | None:
    """The scope of the request being served here; None outside a request."""
    return _current.get()


def request_scope() -> RequestScope:
    """A new request's scope, to be entered (``with request_scope():``) around the whole request."""
    return RequestScope()


def is_unbudgeted() -> bool:
    return _unbudgeted.get()


@contextlib.contextmanager
def unbudgeted() -> Iterator[None]:
    """Calls the budget must not skip (still behind the breaker): the login throttle's counters, whose
    Redis share a skipped call would leave uncounted (a burst of logins would get more tries)."""
    token = _unbudgeted.set(True)
    try:
        yield
    finally:
        _unbudgeted.reset(token)
