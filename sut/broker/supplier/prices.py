"""Deterministic reference prices and FX rates.

Prices are a fixed table (plus a hash-derived price for any other well-formed
symbol) so fixture-driven tests get known, repeatable results; nothing here
depends on time or randomness.
"""

from __future__ import annotations

import hashlib
import re
from decimal import ROUND_HALF_EVEN, Decimal

from brokercalc import RateTable

BASE_CURRENCY = "USD"

# Units of each currency per 1 USD.
USD_RATES: dict[str, Decimal] = {
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "CHF": Decimal("0.88"),
    "JPY": Decimal("151.25"),
}

# symbol -> (native currency, mid price in that currency)
BASE_PRICES: dict[str, tuple[str, Decimal]] = {
    "AAPL": ("USD", Decimal("189.25")),
    "MSFT": ("USD", Decimal("415.50")),
    "GOOG": ("USD", Decimal("142.10")),
    "AMZN": ("USD", Decimal("178.35")),
    "NVDA": ("USD", Decimal("875.40")),
    "TSLA": ("USD", Decimal("201.15")),
    "META": ("USD", Decimal("495.00")),
    "IBM": ("USD", Decimal("168.80")),
    "ORCL": ("USD", Decimal("121.45")),
    "INTC": ("USD", Decimal("43.20")),
    "SAP": ("EUR", Decimal("180.50")),
    "SIE": ("EUR", Decimal("172.30")),
    "ASML": ("EUR", Decimal("890.20")),
    "AIR": ("EUR", Decimal("160.05")),
    "BMW": ("EUR", Decimal("104.60")),
    "VOD": ("GBP", Decimal("0.7120")),
    "HSBA": ("GBP", Decimal("6.3150")),
    "BP": ("GBP", Decimal("4.9825")),
    "ULVR": ("GBP", Decimal("39.85")),
    "AZN": ("GBP", Decimal("105.40")),
    "NESN": ("CHF", Decimal("97.52")),
    "NOVN": ("CHF", Decimal("88.70")),
    "ROG": ("CHF", Decimal("243.10")),
    "7203": ("JPY", Decimal("3550")),
    "6758": ("JPY", Decimal("13125")),
}

SYMBOL_RE = re.compile(r"^[A-Z0-9.]{1,12}$")
PRICE_PLACES = Decimal("0.0001")
RATE_PLACES = Decimal("0.000001")


class UnknownSymbol(LookupError):
    """The symbol is not well-formed, so no price exists."""


def rate_table() -> RateTable:
    """The FX table used for all conversions."""
    return RateTable(base=BASE_CURRENCY, rates=dict(USD_RATES))


def currencies() -> list[str]:
    """Every currency the supplier can price in."""
    return sorted([BASE_CURRENCY, *USD_RATES])


def native_price(symbol: str) -> tuple[str, Decimal]:
    """The symbol's (currency, price): from the table, else derived from its hash."""
    if not SYMBOL_RE.match(symbol):
        raise UnknownSymbol(symbol)
    if symbol in BASE_PRICES:
        return BASE_PRICES[symbol]
    digest = int(hashlib.sha256(symbol.encode()).hexdigest()[:8], 16)
    return BASE_CURRENCY, Decimal(1000 + digest % 99000) / 100


def mid_price(symbol: str, currency: str) -> Decimal:
    """The mid price in ``currency``, to 4 decimal places (half-even)."""
    native_ccy, price = native_price(symbol)
    if currency not in currencies():
        raise KeyError(currency)
    # cross() is full precision; round once, to 4 places rather than to the
    # currency's minor unit, because this is a unit price, not an amount.
    converted = (
        price if native_ccy == currency else price * rate_table().cross(native_ccy, currency)
    )
    return converted.quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN)


def fx_rates(base: str) -> dict[str, Decimal]:
    """Units of each currency per one ``base``, to 6 decimal places."""
    if base not in currencies():
        raise KeyError(base)
    table = rate_table()
    return {
        ccy: table.cross(base, ccy).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)
        for ccy in currencies()
        if ccy != base
    }
