"""One throttle for every door to a password: the API login, the password change, the Django admin.

Two limits count failed logins within a 60 s window (API.md, "Settled details"): per normalized
email (10, so every spelling of one address shares one allowance) and per client address (20, with
the address from techbirdsfly.client, which believes X-Forwarded-For only from trusted proxies, and
counts an IPv6 client by its /64).
Counters live in Redis while it is up and in the database while it is not; a check adds both, so an
outage neither opens the door nor forgets the failures made before it.

A try is counted as a failure *before* its password is checked and released if it turns out not to
be one: checked after, a concurrent burst would all pass the check before any is counted
(faults/tests/test_login_throttle.py).

The third guard is per process: at most LOGIN_CONCURRENCY password checks run at once. A hash is
the most expensive thing a request can make us do, and a flood of them must not hold every worker
thread while /api/health and everyone else wait.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from techbirdsfly.cache import window_decrement, window_increment, window_read
from techbirdsfly.client import limit_key

from . import cache
from .models import LoginFailure
from .tokens import email_hash


class LoginRefused(Exception):
    """A try refused before its password was checked; it is not counted as a failure."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class LoginThrottled(LoginRefused):
    pass


class LoginBusy(LoginRefused):
    pass


@dataclass(frozen=True)
class _Limit:
    subject: str  # LoginFailure.subject
    digest: str  # SHA-256 of what is counted: counters never hold an email or an address
    key: str  # the Redis counter
    limit: int
    detail: str


def _email_limit(email: str) -> _Limit:
    digest = email_hash(email)
    return _Limit(
        LoginFailure.Subject.EMAIL,
        digest,
        cache.login_failures_key(digest),
        settings.LOGIN_FAILURE_LIMIT,
        "Too many failed logins for this email; try again later.",
    )


def _address_limit(address: str) -> _Limit:
    digest = hashlib.sha256(limit_key(address).encode()).hexdigest()
    return _Limit(
        LoginFailure.Subject.ADDRESS,
        digest,
        cache.address_failures_key(digest),
        settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        "Too many failed logins from this address; try again later.",
    )


def _failures(limit: _Limit) -> tuple[int, int]:
    """Failures counted for this subject in the current window, and seconds until the window ends."""
    since = timezone.now() - timedelta(seconds=cache.LOGIN_FAILURES_WINDOW)
    stored = list(
        LoginFailure.objects.filter(subject=limit.subject, email_hash=limit.digest, at__gt=since).values_list(
            "at", flat=True
        )
    )
    count, retry_after = len(stored), 0
    if stored:
        retry_after = math.ceil((min(stored) - since).total_seconds())
    in_redis = window_read(cache.LOGIN_FAILURES, limit.key)
    if in_redis is not None:
        count += in_redis[0]
        retry_after = max(retry_after, in_redis[1])
    return count, max(retry_after, 1)


def _reserve(limit: _Limit) -> int | None:
    """Count a failure now; the LoginFailure id when it was counted in the database, else None."""
    if window_increment(cache.LOGIN_FAILURES, limit.key) is not None:
        return None
    LoginFailure.objects.filter(at__lt=timezone.now() - timedelta(hours=1)).delete()
    return LoginFailure.objects.create(subject=limit.subject, email_hash=limit.digest).pk


def _release(limit: _Limit, reservation: int | None) -> None:
    if reservation is None:
        window_decrement(cache.LOGIN_FAILURES, limit.key)
    else:
        LoginFailure.objects.filter(pk=reservation).delete()


class LoginTry:
    """The try under way; mark it ``succeeded()`` once the password proved right."""

    def __init__(self) -> None:
        self.ok = False

    def succeeded(self) -> None:
        self.ok = True


@contextmanager
def login_try(*, email: str, address: str | None) -> Iterator[LoginTry]:
    """Count a try against the address (when known) and the email; raise LoginThrottled over a limit.

    The try stays counted as a failure unless the block marks it succeeded or raises LoginRefused.
    A success releases only this try's own count: it does not reset another client's failures.
    """
    limits = ([_address_limit(address)] if address else []) + [_email_limit(email)]
    reserved: list[tuple[_Limit, int | None]] = []
    attempt = LoginTry()
    try:
        for limit in limits:
            reserved.append((limit, _reserve(limit)))
            failures, retry_after = _failures(limit)  # this try included
            if failures > limit.limit:
                raise LoginThrottled(limit.detail, retry_after)
        yield attempt
    except LoginRefused:
        attempt.ok = True  # a refused try is not a failed one
        raise
    finally:
        if attempt.ok:
            for limit, reservation in reserved:
                _release(limit, reservation)


class _PasswordCheckGate:
    """At most LOGIN_CONCURRENCY password checks at once in this process; the rest are refused.

    A refused check waits at most LOGIN_CONCURRENCY_WAIT seconds for a slot: long enough to absorb
    an honest burst of a few logins, short enough that a flood cannot queue up worker threads.
    """

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._running = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        size = settings.LOGIN_CONCURRENCY
        with self._free:
            if not self._free.wait_for(lambda: self._running < size, timeout=settings.LOGIN_CONCURRENCY_WAIT):
                raise LoginBusy("Too many logins at once; try again in a moment.", 1)
            self._running += 1
        try:
            yield
        finally:
            with self._free:
                self._running -= 1
                self._free.notify()


password_check_slot = _PasswordCheckGate().slot
