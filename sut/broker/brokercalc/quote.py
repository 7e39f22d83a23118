"""All-in price quotes for a client order.

Why a breakdown object rather than a single number: the client must be shown
(and regulators require) every component of the price - execution price,
notional, commission, tax - and the Django layer stores and serialises the
same breakdown, so it is a frozen value object with a lossless string form.

Pricing model: the desk quotes around a mid price with a symmetric spread,
so a BUY pays half the spread above mid and a SELL receives half the spread
below mid.  The execution price is kept to 6 decimal places (finer than any
currency) because quantity * price is rounded to the currency only once, at
the notional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Decimal

from brokercalc.errors import CalculationError
from brokercalc.fees import BPS_PER_UNIT, STANDARD_SCHEDULE, FeeSchedule, commission
from brokercalc.money import as_decimal, calc_context, normalize_currency, quantize
from brokercalc.side import Side, parse_side
from brokercalc.tax import transaction_tax

__all__ = [
    "PRICE_EXPONENT",
    "QuoteBreakdown",
    "Side",
    "execution_price",
    "price_quote",
]

#: Execution prices are quantized to 10**PRICE_EXPONENT (6 decimal places).
PRICE_EXPONENT = -6
_PRICE_QUANTUM = Decimal(1).scaleb(PRICE_EXPONENT)

#: A spread of 20 000 bps (200 %) would make the SELL price zero.
_MAX_SPREAD_BPS = Decimal(20_000)

_DECIMAL_FIELDS = ("quantity", "unit_price", "notional", "commission", "tax", "total")


@dataclass(frozen=True)
class QuoteBreakdown:
    """Every component of a quote, in ``currency``.

    ``total`` is what the client pays (BUY: notional + commission + tax) or
    receives (SELL: notional - commission - tax).  A SELL total can be
    negative for a tiny order whose minimum commission exceeds its notional;
    that is reported honestly rather than hidden.
    """

    side: Side
    quantity: Decimal
    unit_price: Decimal
    notional: Decimal
    commission: Decimal
    tax: Decimal
    total: Decimal
    currency: str

    def as_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict: Decimals as plain strings, side as its value.

        Strings, not floats, so no precision is lost in transit; fixed-point
        notation (never ``1E+3``) so JavaScript and humans read them alike.
        """
        result: dict[str, str] = {"side": self.side.value}
        for name in _DECIMAL_FIELDS:
            result[name] = format(getattr(self, name), "f")
        result["currency"] = self.currency
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> QuoteBreakdown:
        """Rebuild a breakdown from :meth:`as_dict` output (e.g. a stored JSON quote)."""
        missing = {f.name for f in fields(cls)} - set(data)
        if missing:
            raise CalculationError(f"quote data lacks {', '.join(sorted(missing))}")
        try:
            values = {name: Decimal(data[name]) for name in _DECIMAL_FIELDS}
        except ArithmeticError as exc:
            raise CalculationError(f"quote data holds a non-decimal value: {exc}") from exc
        return cls(
            side=parse_side(data["side"]),
            currency=normalize_currency(data["currency"]),
            **values,
        )


def execution_price(side: Side, mid: Decimal, spread_bps: Decimal) -> Decimal:
    """Return the client's price: mid plus (BUY) or minus (SELL) half the spread.

    Rounded half-even to 6 decimal places.
    """
    trade_side = parse_side(side)
    mid_value = as_decimal(mid, "mid")
    spread = as_decimal(spread_bps, "spread_bps")
    if mid_value <= 0:
        raise CalculationError(f"mid price must be > 0, got {mid_value}")
    if spread < 0:
        raise CalculationError(f"spread_bps must be >= 0, got {spread}")
    if spread >= _MAX_SPREAD_BPS:
        raise CalculationError(
            f"spread_bps must be below {_MAX_SPREAD_BPS} or the sell price is not positive, "
            f"got {spread}"
        )
    ctx = calc_context()
    half_spread = ctx.divide(spread, 2 * BPS_PER_UNIT)
    factor = 1 + half_spread if trade_side is Side.BUY else 1 - half_spread
    price = ctx.multiply(mid_value, factor)
    return price.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN, context=ctx)


def price_quote(
    *,
    side: Side,
    quantity: Decimal,
    mid: Decimal,
    spread_bps: Decimal,
    currency: str,
    schedule: FeeSchedule = STANDARD_SCHEDULE,
    tax_rate: Decimal = Decimal("0"),
) -> QuoteBreakdown:
    """Price an order of ``quantity`` units at ``mid`` with the given spread, fees and tax.

    Keyword-only so that ``quantity`` and ``mid`` (both Decimals) can never
    be swapped by accident.  Raises ``CalculationError`` (a ``ValueError``)
    with a message naming the bad argument for non-positive quantity or mid,
    a negative spread, an unknown currency or a bad tax rate.
    """
    trade_side = parse_side(side)
    code = normalize_currency(currency)
    qty = as_decimal(quantity, "quantity")
    if qty <= 0:
        raise CalculationError(f"quantity must be > 0, got {qty}")
    unit_price = execution_price(trade_side, mid, spread_bps)
    ctx = calc_context()
    notional = quantize(ctx.multiply(qty, unit_price), code)
    fee = commission(notional, schedule, code)
    tax = transaction_tax(notional, tax_rate, trade_side, code)
    if trade_side is Side.BUY:
        total = ctx.add(ctx.add(notional, fee), tax)
    else:
        total = ctx.subtract(ctx.subtract(notional, fee), tax)
    return QuoteBreakdown(
        side=trade_side,
        quantity=qty,
        unit_price=unit_price,
        notional=notional,
        commission=fee,
        tax=tax,
        total=quantize(total, code),
        currency=code,
    )
