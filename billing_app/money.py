"""How money and times go on the wire (API.md, "Settled details"): decimal strings, ISO 8601 with offset."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
# A usage amount is exact: units (an integer) * a unit price with four places has four places.
USAGE_PLACES = Decimal("0.0001")


def to_cents(value: Decimal | None) -> Decimal:
    """Round half-up to cents; None (the sum of no rows) is zero."""
    return (value or Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


def cents(value: Decimal | None) -> str:
    """A money field: ``"12.50"``."""
    return format(to_cents(value), "f")


def usage_amount(value: Decimal) -> str:
    """A usage record's exact amount: ``"1.1550"``."""
    return format(value.quantize(USAGE_PLACES), "f")


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit offset: ``2026-05-01T12:00:00+00:00``."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def month_start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s calendar month in UTC."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
