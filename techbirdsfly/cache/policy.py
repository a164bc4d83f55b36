"""The cache policy: which apps have a cache alias, their key prefixes, and the TTL of every kind of data.

This module is the single source of truth for those facts; settings build ``CACHES`` from it and the
cache layer refuses to store anything whose kind is not listed here, so an entry without a TTL
cannot exist. It imports nothing from Django so that settings can use it.
"""

from __future__ import annotations

from typing import NamedTuple

# App alias -> key prefix. Keys in Redis look like ``{Prefix}_{key}`` (API.md, "Keys in Redis").
APPS: dict[str, str] = {
    "auth": "AuthService",
    "billing": "BillingService",
    "admin": "AdminService",
    "image": "ImageService",
    "user": "UserService",
}

# The ``default`` alias (DRF throttles, anything Django itself caches) gets a prefix too, so that
# no key in Redis is without an owner.
DEFAULT_PREFIX = "TechBirdsFly"

# Never cache a serialized value larger than this; such a value is computed, served and logged.
MAX_VALUE_BYTES = 1024 * 1024

# Generation keys (see generations.py) outlive the longest entry they guard.
GENERATION_TTL = 2 * 60 * 60


class Kind(NamedTuple):
    app: str
    name: str
    ttl: int  # seconds, always > 0


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    table = {f"{k.app}.{k.name}": k for k in kinds}
    for key, kind in table.items():
        if kind.app not in APPS or kind.ttl <= 0:
            raise ValueError(f"cache kind {key} needs a known app and a positive TTL")
    return table


KINDS: dict[str, Kind] = _kinds(
    Kind("auth", "token", 60 * 60),
    Kind("auth", "profile", 5 * 60),
    Kind("auth", "login_failures", 60),
    Kind("billing", "summary", 15 * 60),
    Kind("billing", "usage", 5 * 60),
    Kind("billing", "invoices", 30 * 60),
    Kind("billing", "accounts", 15 * 60),  # the first page of an owner's account list
    Kind("admin", "dashboard", 5 * 60),
    Kind("image", "metadata", 60 * 60),
    Kind("image", "list", 60 * 60),  # the first page of an owner's image list, per status
    Kind("user", "preferences", 10 * 60),
)
