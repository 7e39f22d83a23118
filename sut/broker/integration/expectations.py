"""Independent re-statement of the broker's published pricing and settlement rules.

The integration suite recomputes what the server should answer from the
rules as documented (spread, fee schedule, tax, T+2), without importing the
server's code: the client box has only this folder, and a second
implementation is what makes the comparison a test.

Rules: BUY pays mid + half the spread, SELL receives mid - half the spread
(unit price to 6 places, half-even); notional = quantity x unit price
rounded half-even to the currency's minor unit; commission is marginal:
25 bps to 10 000, 15 bps to 100 000, 8 bps above, clamped to [5, 2 500];
tax = notional x rate rounded UP, on buys only; total = notional +/- fees.
Settlement is T+2 business days (weekends and published holidays skipped,
a non-business trade date first rolls forward).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0}
TIERS = (
    (Decimal("10000"), Decimal("25")),
    (Decimal("100000"), Decimal("15")),
    (None, Decimal("8")),
)
MIN_FEE = Decimal("5")
MAX_FEE = Decimal("2500")


def to_currency(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-EXPONENTS[currency]), rounding=rounding)


@dataclass(frozen=True)
class Expected:
    unit_price: Decimal
    notional: Decimal
    commission: Decimal
    tax: Decimal
    total: Decimal


def expected_quote(
    side: str,
    quantity: Decimal,
    mid: Decimal,
    spread_bps: Decimal,
    tax_rate: Decimal,
    currency: str,
) -> Expected:
    half = spread_bps / Decimal(20000)
    factor = 1 + half if side == "buy" else 1 - half
    unit = (mid * factor).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    notional = to_currency(quantity * unit, currency)
    fee = Decimal(0)
    lower = Decimal(0)
    for upto, bps in TIERS:
        upper = notional if upto is None else min(notional, upto)
        if upper <= lower:
            break
        fee += (upper - lower) * bps / Decimal(10000)
        lower = upper
    fee = to_currency(min(max(fee, MIN_FEE), MAX_FEE), currency)
    tax = to_currency(notional * tax_rate, currency, ROUND_CEILING) if side == "buy" else Decimal(0)
    total = notional + fee + tax if side == "buy" else notional - fee - tax
    return Expected(unit, notional, fee, to_currency(tax, currency), to_currency(total, currency))


def is_business_day(day: date, holidays: set[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def expected_settlement(trade_date: date, holidays: Iterable[date], lag: int = 2) -> date:
    closed = set(holidays)
    day = trade_date
    while not is_business_day(day, closed):
        day += timedelta(days=1)
    remaining = lag
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day, closed):
            remaining -= 1
    return day
