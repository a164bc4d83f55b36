"""One clock for every age that one process sets and another compares: the database's.

An entry's signed expiry, a token record's expiry and the age of a journal row are each written by
one process and judged by others, maybe on other machines, so they must agree on what "now" is. Each
process reads the database's clock whenever it reads the journal (journal.py) and keeps time between
reads with its monotonic clock, which nothing steps: a wall clock stepped back (NTP, a VM restored,
an operator) cannot make an entry outlive the journal rows that make it stale, nor revive it.
Before the first read of the journal it is the machine's wall clock.
"""

from __future__ import annotations

import time

_offset = time.time() - time.monotonic()


def now() -> float:
    """Seconds since the epoch, by the database's clock."""
    return time.monotonic() + _offset


def anchor(database_now: float) -> None:
    """Set the clock to ``database_now``, the database's time read a moment ago."""
    global _offset
    _offset = database_now - time.monotonic()
