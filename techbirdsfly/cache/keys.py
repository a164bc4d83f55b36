"""Key functions for the django-redis aliases: ``{Prefix}_{key}``, as the original runbooks expect."""

from __future__ import annotations


def make_key(key: str, key_prefix: str, version: int | None) -> str:
    # Django's default adds ``:version``; the .NET services never did, and cached entries are
    # versioned by generation keys instead (generations.py), so the version is deliberately unused.
    return f"{key_prefix}_{key}"


def reverse_key(key: str) -> str:
    return key.split("_", 1)[1]
