"""Currency-aware money arithmetic on :class:`decimal.Decimal`.

Why this module exists: binary floats cannot represent most decimal fractions
(``0.1 + 0.2 != 0.3``), so every amount of money in the broker is a
``Decimal`` and every rounding decision is made here, explicitly, against the
ISO 4217 number of minor units of the currency.  Centralising it means a
quote, a fee and an instalment plan all round the same way.

Conventions used throughout the package:

* Currency codes are ISO 4217 alphabetic codes.  They are accepted in any
  letter case with surrounding whitespace and normalised to upper case, so a
  value read from a form (``"usd "``) behaves like ``"USD"``.
* Inputs must be ``Decimal`` (an ``int`` is accepted and converted exactly).
  A ``float`` is rejected with ``TypeError`` on purpose: silently accepting
  one would re-introduce exactly the representation error this module exists
  to avoid.
* Arithmetic runs in a private decimal context with 50 significant digits so
  intermediate products of large notionals are never silently rounded by the
  (28-digit) default context of the calling thread.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)
from types import MappingProxyType

from brokercalc.errors import CalculationError

__all__ = [
    "CURRENCY_EXPONENTS",
    "PRECISION",
    "UnknownCurrency",
    "as_decimal",
    "calc_context",
    "minor_unit",
    "minor_units",
    "normalize_currency",
    "quantize",
    "split_evenly",
]

#: Significant digits used for intermediate arithmetic (see module docstring).
PRECISION = 50

#: ISO 4217 minor units (digits after the decimal point) per currency.
#: Read-only so no caller can change how another caller's money rounds.
CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {
        "AUD": 2,
        "BHD": 3,
        "CAD": 2,
        "CHF": 2,
        "CLP": 0,
        "CZK": 2,
        "DKK": 2,
        "EUR": 2,
        "GBP": 2,
        "HKD": 2,
        "ISK": 0,
        "JOD": 3,
        "JPY": 0,
        "KRW": 0,
        "KWD": 3,
        "NOK": 2,
        "NZD": 2,
        "OMR": 3,
        "PLN": 2,
        "SEK": 2,
        "SGD": 2,
        "USD": 2,
    }
)

_ROUNDING_MODES = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)


class UnknownCurrency(CalculationError):
    """Raised for a currency code that is not in :data:`CURRENCY_EXPONENTS`.

    Rounding to an unknown number of minor units would be a guess, and a
    wrong guess (e.g. treating JPY as having cents) mis-prices every trade,
    so we refuse instead.  The offending code is kept in :attr:`currency`.
    """

    def __init__(self, currency: object) -> None:
        self.currency = currency
        super().__init__(f"unknown currency code {currency!r}")


def calc_context() -> decimal.Context:
    """Return a fresh high-precision decimal context for a calculation.

    Why: the caller's thread-local context may have been changed (or be the
    28-digit default); using our own context makes results independent of
    whoever called us.  ``InvalidOperation`` stays trapped so NaN never leaks
    out silently.
    """
    return decimal.Context(
        prec=PRECISION,
        rounding=ROUND_HALF_EVEN,
        Emin=-999_999,
        Emax=999_999,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )


def as_decimal(value: object, name: str) -> Decimal:
    """Validate ``value`` as a finite money-like number and return it as ``Decimal``.

    ``int`` is converted exactly (it is exact, unlike ``float``); ``bool`` is
    refused because ``True`` as an amount is always a bug.  ``name`` is used
    in the error message so the caller can tell which argument was wrong.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        hint = " (use Decimal, never float, for money)" if isinstance(value, float) else ""
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}{hint}")
    result = Decimal(value)
    if not result.is_finite():
        raise CalculationError(f"{name} must be a finite number, got {result}")
    return result


def normalize_currency(currency: str) -> str:
    """Return the canonical upper-case code for ``currency``.

    Raises :class:`UnknownCurrency` if the code is not a string or not in
    :data:`CURRENCY_EXPONENTS`.
    """
    if not isinstance(currency, str):
        raise UnknownCurrency(currency)
    code = currency.strip().upper()
    if code not in CURRENCY_EXPONENTS:
        raise UnknownCurrency(currency)
    return code


def minor_units(currency: str) -> int:
    """Return the ISO 4217 number of decimal places of ``currency`` (USD 2, JPY 0, KWD 3)."""
    return CURRENCY_EXPONENTS[normalize_currency(currency)]


def minor_unit(currency: str) -> Decimal:
    """Return the smallest representable amount of ``currency`` (``0.01`` for USD, ``1`` for JPY).

    Handy as a tolerance in comparisons and as the ``exp`` for ``Decimal.quantize``.
    """
    return Decimal(1).scaleb(-minor_units(currency))


def quantize(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``amount`` to the minor unit of ``currency``.

    The default is banker's rounding (half to even) because it is unbiased
    over many amounts; callers with a legal rounding rule (tax authorities
    round up) pass ``rounding`` explicitly.

    A negative zero result (``-0.001`` rounded) is returned as ``0.00``
    because ``"-0.00"`` on an invoice or in JSON looks like a bug.
    """
    value = as_decimal(amount, "amount")
    if rounding not in _ROUNDING_MODES:
        raise CalculationError(f"unknown rounding mode {rounding!r}")
    exp = minor_unit(currency)
    try:
        result = value.quantize(exp, rounding=rounding, context=calc_context())
    except decimal.InvalidOperation as exc:
        raise CalculationError(f"amount {value} is too large to quantize") from exc
    if result.is_zero() and result.is_signed():
        result = result.copy_abs()
    return result


def split_evenly(amount: Decimal, parts: int, currency: str) -> list[Decimal]:
    """Split ``amount`` into ``parts`` shares that add up to it exactly.

    Why not ``amount / parts``: 100.00 / 3 = 33.33 three times loses a cent.
    Instead the amount is first rounded to the currency, counted in minor
    units, and the remainder of the integer division is handed out one
    minor unit at a time to the *first* shares.  Hence:

    * ``sum(result) == quantize(amount, currency)`` exactly;
    * any two shares differ by at most one minor unit;
    * larger shares come first (``[33.34, 33.33, 33.33]``), so the first
      instalment of a plan absorbs the odd cent.

    A negative amount is split symmetrically: ``split_evenly(-x)`` is the
    element-wise negation of ``split_evenly(x)`` (largest *magnitude* first),
    so a refund schedule mirrors the original charge schedule.
    """
    if isinstance(parts, bool) or not isinstance(parts, int):
        raise TypeError(f"parts must be an int, got {type(parts).__name__}")
    if parts < 1:
        raise CalculationError(f"parts must be >= 1, got {parts}")
    total = quantize(amount, currency)
    exponent = minor_units(currency)
    # Exact: ``total`` already has exactly ``exponent`` decimal places.
    units = int(total.scaleb(exponent, context=calc_context()))
    sign = -1 if units < 0 else 1
    base, remainder = divmod(abs(units), parts)
    shares = [base + 1] * remainder + [base] * (parts - remainder)
    return [quantize(Decimal(sign * share).scaleb(-exponent), currency) for share in shares]
