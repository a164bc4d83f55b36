"""The shared cache layer, the only code that talks to django-redis. Apps import from here.

- reads.py: ``get_or_compute``, cache-aside with single flight and early refresh;
- scope.py, middleware.py: what one request holds (its Redis budget, its read), opened and closed
  around the request;
- readahead.py: every entry of a request, token included, in one round trip;
- generations.py: ``invalidate`` and the generations that make entries stale; stamps.py: their
  stored form, and the scripts that read it;
- journal.py, journal_sql.py, follower.py: every invalidation as a database row, known to every
  process (pushed on commit, polled for);
- calls.py: the breaker and the request's Redis budget around every call;
- replies.py: the shape of what Redis answered, checked (a malformed reply is Redis unavailable);
- fills.py: the fill locks (leases) of single flight;
- counters.py, ops.py: window counters; listing, counting and clearing one app's keys;
- connection.py: pool factories and Sentinel; identity.py: the servers seen; metering.py: a read's
  wait on Redis; rawio.py: raw send and receive of a read.
"""

from .calls import CacheUnavailable, reset_breakers
from .counters import window_decrement, window_increment, window_read
from .generations import invalidate
from .ops import clear_app, count_keys, ping, scan_keys, server_info
from .policy import APPS, KINDS
from .readahead import USER, EntryRef, read_ahead, remember_user
from .reads import Cached, get_or_compute
from .stats import cache_counts

__all__ = [
    "APPS",
    "KINDS",
    "USER",
    "CacheUnavailable",
    "Cached",
    "EntryRef",
    "cache_counts",
    "clear_app",
    "count_keys",
    "get_or_compute",
    "invalidate",
    "ping",
    "read_ahead",
    "remember_user",
    "reset_breakers",
    "scan_keys",
    "server_info",
    "window_decrement",
    "window_increment",
    "window_read",
]
