"""brokercalc: the broker's pure-Python pricing and settlement calculations.

Why a separate package: the numbers a client is charged must not depend on
the web framework, the database or the request, so this package imports
only the standard library (never Django).  That keeps it unit-testable in
milliseconds and lets the Django app, batch jobs and the readiness checks
share one implementation.

Money is always :class:`decimal.Decimal` (floats are rejected), values are
frozen dataclasses, and every deliberate error is a
:class:`CalculationError` (a ``ValueError``).
"""

from __future__ import annotations

from brokercalc.errors import CalculationError
from brokercalc.fees import (
    STANDARD_SCHEDULE,
    FeeSchedule,
    InvalidFeeSchedule,
    Tier,
    commission,
    uncapped_commission,
)
from brokercalc.fx import MissingRate, RateTable
from brokercalc.money import (
    CURRENCY_EXPONENTS,
    UnknownCurrency,
    minor_unit,
    minor_units,
    normalize_currency,
    quantize,
    split_evenly,
)
from brokercalc.quote import QuoteBreakdown, Side, execution_price, price_quote
from brokercalc.settlement import (
    add_business_days,
    add_months,
    instalment_schedule,
    is_business_day,
    settlement_date,
)
from brokercalc.tax import transaction_tax

__all__ = [
    "CURRENCY_EXPONENTS",
    "STANDARD_SCHEDULE",
    "CalculationError",
    "FeeSchedule",
    "InvalidFeeSchedule",
    "MissingRate",
    "QuoteBreakdown",
    "RateTable",
    "Side",
    "Tier",
    "UnknownCurrency",
    "add_business_days",
    "add_months",
    "commission",
    "execution_price",
    "instalment_schedule",
    "is_business_day",
    "minor_unit",
    "minor_units",
    "normalize_currency",
    "price_quote",
    "quantize",
    "settlement_date",
    "split_evenly",
    "transaction_tax",
    "uncapped_commission",
]
