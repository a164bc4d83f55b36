"""Shared bits of the cache_* runbook commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from techbirdsfly.cache import APPS


def app_argument(parser) -> None:
    parser.add_argument("app", choices=list(APPS), help="the cache app (alias), e.g. billing")


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def redis_down() -> CommandError:
    return CommandError("Redis is unavailable (see `manage.py cache_ping`); nothing was done.")
