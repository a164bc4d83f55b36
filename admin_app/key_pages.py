"""Pages of one app's keys over SCAN (API.md, "Key listing pages"): up to ``count`` keys, never empty but the last.

SCAN's batches come in any size. Most are empty when other apps' keys fill the buckets a step visits
(the match is applied after the visit), and one can hold more keys than asked for, COUNT being only a
hint. So a page walks on through empty batches, each step visiting four times as many buckets as the
one before (up to MAX_HINT); when a batch holds more than ``count`` keys it scans the same cursor
again with a smaller hint, so that the page is one whole batch and the next page starts at SCAN's own
cursor: SCAN's guarantees hold as they are (every key present throughout the walk is listed).

Only when even COUNT 1 -- a single bucket -- brings more than ``count`` keys is a batch handed out over
several pages, in key order. The cursor then names that bucket (SCAN cursor), where it ended (the
next SCAN cursor) and the last key given, never an offset: a key expiring in between cannot make the
next page skip one. If the bucket has emptied meanwhile, the scan ends elsewhere and nothing is
filtered out (a key may then be listed twice, as SCAN allows, but none is missed).

Cursors stay strings: ``"<scan cursor>"`` between batches (``"0"`` after the last page, as SCAN's),
``"<scan cursor>.<its end>.<last key, base64url>"`` inside one bucket.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from techbirdsfly.cache import scan_keys

MAX_HINT = 10_000  # one SCAN step visits at most about this many buckets: Redis stays responsive
MAX_SCAN_CURSOR = 2**64 - 1  # SCAN cursors are unsigned 64-bit integers


@dataclass(frozen=True)
class PageCursor:
    scan: int = 0
    end: int | None = None  # inside a bucket: the SCAN cursor after it, and the last key given
    after: str | None = None

    def encode(self) -> str:
        if self.after is None:
            return str(self.scan)
        token = base64.urlsafe_b64encode(self.after.encode()).rstrip(b"=").decode()
        return f"{self.scan}.{self.end}.{token}"

    @classmethod
    def decode(cls, raw: str) -> PageCursor:
        """The cursor a page returned; ValueError for anything else."""
        parts = raw.split(".")
        if len(parts) not in (1, 3) or not all(part.isdigit() for part in parts[:2]):
            raise ValueError("not a cursor of this listing")
        numbers = [int(part) for part in parts[:2]]
        if max(numbers) > MAX_SCAN_CURSOR:
            raise ValueError("not a cursor of this listing")
        if len(parts) == 1:
            return cls(numbers[0])
        token = parts[2]
        try:
            after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("not a cursor of this listing") from None
        if not after:
            raise ValueError("not a cursor of this listing")
        return cls(numbers[0], numbers[1], after)


Pairs = list[tuple[str, int]]


def keys_page(app: str, *, match: str, count: int, cursor: PageCursor) -> tuple[Pairs, PageCursor]:
    """Up to ``count`` (key, ttl) pairs from ``cursor`` on, and the cursor of the next page ("0": none).

    Raises CacheUnavailable when Redis cannot be reached.
    """
    if cursor.after is not None:
        next_scan, batch = scan_keys(app, match=match, count=1, cursor=cursor.scan)
        if next_scan == cursor.end:  # the same bucket: go on after the last key given
            batch = [pair for pair in batch if pair[0] > cursor.after]
        if batch or next_scan == 0:
            return _page(cursor.scan, next_scan, batch, count)
        cursor = PageCursor(next_scan)
    scan, hint = cursor.scan, count
    while True:
        next_scan, batch = scan_keys(app, match=match, count=hint, cursor=scan)
        if len(batch) > count and hint > 1:
            hint = max(hint // 4, 1)  # too many for one page: the same cursor, fewer buckets
            continue
        if batch or next_scan == 0:
            return _page(scan, next_scan, batch, count)
        scan, hint = next_scan, min(hint * 4, MAX_HINT)


def _page(scan: int, next_scan: int, batch: Pairs, count: int) -> tuple[Pairs, PageCursor]:
    if len(batch) <= count:
        return batch, PageCursor(next_scan)
    page = sorted(batch)[:count]  # one bucket holds more than a page: hand it out in key order
    return page, PageCursor(scan, next_scan, page[-1][0])
