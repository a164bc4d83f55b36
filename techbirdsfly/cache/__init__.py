"""The shared cache layer: see layer.py. Apps import from here."""

from .layer import (
    Cached,
    CacheUnavailable,
    clear_app,
    count_keys,
    get_or_compute,
    invalidate,
    ping,
    scan_keys,
    server_info,
    window_decrement,
    window_increment,
    window_read,
)
from .policy import APPS, KINDS
from .stats import cache_counts

__all__ = [
    "APPS",
    "KINDS",
    "CacheUnavailable",
    "Cached",
    "cache_counts",
    "clear_app",
    "count_keys",
    "get_or_compute",
    "invalidate",
    "ping",
    "scan_keys",
    "server_info",
    "window_decrement",
    "window_increment",
    "window_read",
]
