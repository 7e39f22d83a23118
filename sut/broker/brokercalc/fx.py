"""Foreign-exchange conversion through a single base currency.

Why a base-currency table: market-data feeds publish one rate per currency
against a base (USD here).  Any pair is then a *cross* rate,
``rate[target] / rate[source]``, so N currencies need N numbers rather than
N^2, and the table can never contain a triangular arbitrage by construction.

Cross rates are kept at full (50-digit) precision and only the final
converted amount is rounded, once, to the target currency: rounding the
rate first would compound errors on large notionals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from brokercalc.errors import CalculationError
from brokercalc.money import as_decimal, calc_context, normalize_currency, quantize

__all__ = ["MissingRate", "RateTable"]


class MissingRate(CalculationError, KeyError):
    """Raised when a conversion needs a currency the table has no rate for.

    It is both a ``KeyError`` (it *is* a failed lookup) and, through
    :class:`~brokercalc.errors.CalculationError`, a ``ValueError``, so
    callers written against either convention catch it.
    """

    def __init__(self, currency: str, base: str) -> None:
        self.currency = currency
        self.base = base
        super().__init__(f"no FX rate for {currency} against base {base}")

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0])


@dataclass(frozen=True)
class RateTable:
    """An immutable snapshot of FX rates against ``base``.

    ``rates[c]`` is how many units of ``c`` one unit of ``base`` buys
    (``{"EUR": Decimal("0.92")}`` with base USD means 1 USD = 0.92 EUR).
    The base itself is implicitly 1; listing it is allowed only with rate 1.

    The mapping is copied into a read-only proxy with normalised codes, so
    mutating the dict passed in cannot change a table already in use.
    """

    base: str
    rates: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        base = normalize_currency(self.base)
        cleaned: dict[str, Decimal] = {}
        for raw_code, raw_rate in self.rates.items():
            code = normalize_currency(raw_code)
            rate = as_decimal(raw_rate, f"rate for {code}")
            if rate <= 0:
                raise CalculationError(f"rate for {code} must be positive, got {rate}")
            if code == base and rate != 1:
                raise CalculationError(f"rate for the base currency {base} must be 1, got {rate}")
            if code in cleaned and cleaned[code] != rate:
                raise CalculationError(f"conflicting rates given for {code}")
            cleaned[code] = rate
        cleaned[base] = Decimal(1)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "rates", MappingProxyType(cleaned))

    def __hash__(self) -> int:
        # The generated hash would fail on the (unhashable) mapping proxy.
        return hash((self.base, frozenset(self.rates.items())))

    @property
    def currencies(self) -> frozenset[str]:
        """All currencies this table can convert between, base included."""
        return frozenset(self.rates)

    def _rate(self, currency: str) -> Decimal:
        code = normalize_currency(currency)
        try:
            return self.rates[code]
        except KeyError:
            raise MissingRate(code, self.base) from None

    def cross(self, source: str, target: str) -> Decimal:
        """Return how many units of ``target`` one unit of ``source`` buys.

        Computed via the base as ``rate[target] / rate[source]`` at full
        precision (no rounding to a currency).
        """
        source_rate = self._rate(source)
        target_rate = self._rate(target)
        return calc_context().divide(target_rate, source_rate)

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal:
        """Convert ``amount`` of ``source`` into ``target``, rounded to ``target``.

        Rounding is half-even, applied exactly once at the end.
        """
        value = as_decimal(amount, "amount")
        rate = self.cross(source, target)
        return quantize(calc_context().multiply(value, rate), target)
