"""Sums of money columns that are exact on every database we run on.

PostgreSQL sums ``numeric`` exactly. SQLite keeps a decimal column as REAL and ``SUM`` adds floats, so
a summary read from the SQLite file of ``make run`` could be off by a float's error before rounding.
On SQLite the sum adds integers of the column's smallest unit (1/10,000 for usage amounts, cents for
invoices) and turns them back into a ``Decimal``; rounding each stored REAL to that unit is exact as
long as a value has at most 15 significant digits, which SQLite keeps for any column we declare.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Sum


class MoneySum(Sum):
    """``Sum`` of a ``DecimalField``: a ``Decimal`` with the column's places, exact on SQLite too."""

    def _scale(self) -> int:
        return 10**self.output_field.decimal_places

    def as_sqlite(self, compiler, connection, **extra_context: Any):
        template = f"%(function)s(%(distinct)sCAST(ROUND(%(expressions)s * {self._scale()}) AS INTEGER)%(order_by)s)"
        return super().as_sql(compiler, connection, template=template + "%(filter)s", **extra_context)

    def convert_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None:
            return None
        if connection.vendor == "sqlite":
            return (Decimal(int(value)) / self._scale()).quantize(Decimal(1).scaleb(-self.output_field.decimal_places))
        return value
