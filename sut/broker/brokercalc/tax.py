"""Transaction (stamp-duty style) tax.

Why only on purchases: stamp duties such as the UK's SDRT are levied on the
buyer when ownership is transferred; the seller pays nothing.  Why rounded
*up*: tax authorities do not accept under-payment by a fraction of a minor
unit, so the broker rounds towards +infinity (``ROUND_CEILING``) and never
owes the difference.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from brokercalc.errors import CalculationError
from brokercalc.money import as_decimal, calc_context, quantize
from brokercalc.side import Side, parse_side

__all__ = ["transaction_tax"]


def transaction_tax(notional: Decimal, rate: Decimal, side: Side, currency: str) -> Decimal:
    """Return the tax due on a trade of ``notional`` in ``currency``.

    ``rate`` is a fraction (``Decimal("0.005")`` is 0.5 %) in ``[0, 1]``.
    BUY pays ``notional * rate`` rounded up to the minor unit; SELL pays 0.
    Arguments are validated for both sides so a bad input is caught even
    on a sell.
    """
    value = as_decimal(notional, "notional")
    fraction = as_decimal(rate, "tax rate")
    if value < 0:
        raise CalculationError(f"notional must be >= 0, got {value}")
    if not 0 <= fraction <= 1:
        raise CalculationError(f"tax rate must be a fraction in [0, 1], got {fraction}")
    trade_side = parse_side(side)
    if trade_side is Side.SELL:
        return quantize(Decimal(0), currency)
    return quantize(calc_context().multiply(value, fraction), currency, ROUND_CEILING)
