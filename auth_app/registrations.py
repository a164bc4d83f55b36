"""How many accounts one client address may create: REGISTRATION_ADDRESS_LIMIT an hour (API.md).

Counted in PostgreSQL, where a Redis writer cannot reach and an outage cannot forget: one
``Registration`` row per account created, keyed by the SHA-256 of ``techbirdsfly.client.limit_key``
(an IPv4 address or an IPv6 /64). ``registration_allowed`` is called twice: once before the
password is hashed, so a refused registration costs no hash, and once inside the transaction that
creates the user, under a lock per address, so concurrent registrations cannot pass it together.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from techbirdsfly.client import limit_key

from .models import Registration


class RegistrationThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        limit = settings.REGISTRATION_ADDRESS_LIMIT
        self.detail = f"Too many new accounts from this address (at most {limit} an hour); try again later."
        super().__init__(self.detail)
        self.retry_after = retry_after


def _digest(address: str) -> str:
    return hashlib.sha256(limit_key(address).encode()).hexdigest()


def registration_allowed(*, address: str, lock: bool = False) -> None:
    """Raise RegistrationThrottled when ``address`` created its allowance of accounts this hour.

    With ``lock``, hold a transaction-scoped lock on the address first (call it in the transaction
    that records the registration).
    """
    digest = _digest(address)
    if lock:
        with connection.cursor() as cursor:
            # The lock key is the digest's first 63 bits; a collision only serializes two addresses.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(digest[:16], 16) >> 1])
    since = timezone.now() - timedelta(seconds=settings.REGISTRATION_ADDRESS_WINDOW)
    stamps = list(
        Registration.objects.filter(address_hash=digest, at__gt=since).order_by("at").values_list("at", flat=True)
    )
    limit = settings.REGISTRATION_ADDRESS_LIMIT
    if len(stamps) >= limit:
        # The window frees a place when the oldest registration that still counts leaves it.
        retry_after = math.ceil((stamps[len(stamps) - limit] - since).total_seconds())
        raise RegistrationThrottled(max(retry_after, 1))


def registration_record(*, address: str) -> None:
    """Count one account created from ``address`` (in the transaction that created it)."""
    window = timedelta(seconds=settings.REGISTRATION_ADDRESS_WINDOW)
    Registration.objects.filter(at__lt=timezone.now() - window).delete()
    Registration.objects.create(address_hash=_digest(address))
