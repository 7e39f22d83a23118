"""The trade direction enum, in its own module to avoid an import cycle.

Why separate: :mod:`brokercalc.tax` needs :class:`Side`, and
:mod:`brokercalc.quote` (which documents ``Side`` as part of its API) needs
the tax function.  Defining ``Side`` here and re-exporting it from
``brokercalc.quote`` keeps both imports acyclic.
"""

from __future__ import annotations

from enum import StrEnum

from brokercalc.errors import CalculationError

__all__ = ["Side", "parse_side"]


class Side(StrEnum):
    """Direction of a trade from the client's point of view.

    A ``StrEnum`` so it compares equal to, and serialises as, the plain
    strings stored in the database and sent over JSON (``"buy"``/``"sell"``).
    """

    BUY = "buy"
    SELL = "sell"


def parse_side(value: object) -> Side:
    """Return ``value`` as a :class:`Side`, accepting the plain strings too.

    Raises :class:`~brokercalc.errors.CalculationError` (not the bare
    ``ValueError`` from the enum) so callers handle it with the other
    calculation errors.
    """
    if isinstance(value, Side):
        return value
    if isinstance(value, str):
        try:
            return Side(value.strip().lower())
        except ValueError:
            pass
    raise CalculationError(f"side must be 'buy' or 'sell', got {value!r}")
