"""The admin app's cache keys (alias ``admin``, prefix ``AdminService``).

The dashboard has no scope: it aggregates every app's tables, so no single write can name what it
makes stale. It is bound by its TTL instead and may be up to ``DASHBOARD_MAX_AGE`` seconds old.
"""

from __future__ import annotations

from techbirdsfly.cache import KINDS, EntryRef

APP = "admin"
DASHBOARD = "admin.dashboard"
DASHBOARD_MAX_AGE = KINDS[DASHBOARD].ttl


def dashboard_key() -> str:
    return "admin:dashboard"


def dashboard_entry() -> EntryRef:
    return EntryRef(DASHBOARD, dashboard_key())
