"""Tiered (marginal) brokerage commission.

Why marginal tiers: with "whole notional at the tier's rate" pricing, a
trade just over a tier boundary can cost *less* than one just under it,
which invites clients to pad orders.  Charging each slice of the notional at
its own tier's rate (like income-tax brackets) makes the commission
continuous and monotone non-decreasing in the notional.  A minimum covers
the fixed cost of handling any order; an optional maximum keeps large
institutional orders competitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokercalc.errors import CalculationError
from brokercalc.money import as_decimal, calc_context, quantize

__all__ = [
    "BPS_PER_UNIT",
    "STANDARD_SCHEDULE",
    "FeeSchedule",
    "InvalidFeeSchedule",
    "Tier",
    "commission",
    "uncapped_commission",
]

#: Basis points in one whole (1 bp = 0.01 % = 1/10_000).
BPS_PER_UNIT = Decimal(10_000)


class InvalidFeeSchedule(CalculationError):
    """Raised when a :class:`Tier` or :class:`FeeSchedule` is inconsistent."""


@dataclass(frozen=True)
class Tier:
    """One bracket of a fee schedule.

    ``rate_bps`` applies to the part of the notional between the previous
    tier's ``upto`` (or 0) and this tier's ``upto``; ``upto=None`` means the
    bracket is unbounded and must be the last one.
    """

    upto: Decimal | None
    rate_bps: Decimal

    def __post_init__(self) -> None:
        if self.upto is not None:
            upto = as_decimal(self.upto, "tier upper bound")
            if upto <= 0:
                raise InvalidFeeSchedule(f"tier upper bound must be positive, got {upto}")
            object.__setattr__(self, "upto", upto)
        rate = as_decimal(self.rate_bps, "tier rate_bps")
        if rate < 0:
            raise InvalidFeeSchedule(f"tier rate_bps must be >= 0, got {rate}")
        object.__setattr__(self, "rate_bps", rate)


@dataclass(frozen=True)
class FeeSchedule:
    """A complete commission schedule, validated on construction.

    Validation happens here rather than in :func:`commission` so that a bad
    schedule (e.g. loaded from configuration) fails loudly at start-up
    instead of mis-pricing the first trade that reaches the broken tier.
    """

    tiers: tuple[Tier, ...]
    minimum: Decimal
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        tiers = tuple(self.tiers)
        if not tiers:
            raise InvalidFeeSchedule("a fee schedule needs at least one tier")
        if not all(isinstance(tier, Tier) for tier in tiers):
            raise InvalidFeeSchedule("tiers must be Tier instances")
        *bounded, last = tiers
        if last.upto is not None:
            raise InvalidFeeSchedule("the last tier must be unbounded (upto=None)")
        previous = Decimal(0)
        for tier in bounded:
            if tier.upto is None:
                raise InvalidFeeSchedule("only the last tier may be unbounded")
            if tier.upto <= previous:
                raise InvalidFeeSchedule(
                    f"tier bounds must be strictly ascending: {tier.upto} after {previous}"
                )
            previous = tier.upto
        minimum = as_decimal(self.minimum, "minimum")
        if minimum < 0:
            raise InvalidFeeSchedule(f"minimum must be >= 0, got {minimum}")
        maximum = None if self.maximum is None else as_decimal(self.maximum, "maximum")
        if maximum is not None and maximum < minimum:
            raise InvalidFeeSchedule(f"maximum {maximum} is below minimum {minimum}")
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "minimum", minimum)
        object.__setattr__(self, "maximum", maximum)


def uncapped_commission(notional: Decimal, schedule: FeeSchedule) -> Decimal:
    """Return the raw marginal commission: no min/max clamp, no rounding.

    Exposed separately so reports can show how much a minimum or maximum
    changed the fee.
    """
    value = as_decimal(notional, "notional")
    if value < 0:
        raise CalculationError(f"notional must be >= 0, got {value}")
    ctx = calc_context()
    fee = Decimal(0)
    lower = Decimal(0)
    for tier in schedule.tiers:
        upper = value if tier.upto is None else min(value, tier.upto)
        if upper <= lower:
            break
        slice_fee = ctx.divide(
            ctx.multiply(ctx.subtract(upper, lower), tier.rate_bps), BPS_PER_UNIT
        )
        fee = ctx.add(fee, slice_fee)
        lower = upper
    return fee


def commission(notional: Decimal, schedule: FeeSchedule, currency: str) -> Decimal:
    """Commission on ``notional``: marginal tiers, clamped to [minimum, maximum], rounded.

    The clamp is applied before rounding (half-even to the currency) so the
    result is monotone non-decreasing in ``notional``.  Note that a zero
    notional still pays the minimum: the minimum prices the order handling,
    not the amount.
    """
    fee = uncapped_commission(notional, schedule)
    fee = max(fee, schedule.minimum)
    if schedule.maximum is not None:
        fee = min(fee, schedule.maximum)
    return quantize(fee, currency)


#: The broker's default retail schedule:
#: 25 bps up to 10 000, 15 bps from 10 000 to 100 000, 8 bps above;
#: never less than 5 nor more than 2 500 (in the trade currency).
STANDARD_SCHEDULE = FeeSchedule(
    tiers=(
        Tier(upto=Decimal("10000"), rate_bps=Decimal("25")),
        Tier(upto=Decimal("100000"), rate_bps=Decimal("15")),
        Tier(upto=None, rate_bps=Decimal("8")),
    ),
    minimum=Decimal("5"),
    maximum=Decimal("2500"),
)
