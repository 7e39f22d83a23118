"""Tests for :mod:`brokercalc.fees`: marginal tiers, clamps, schedule validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from brokercalc import (
    STANDARD_SCHEDULE,
    CalculationError,
    FeeSchedule,
    InvalidFeeSchedule,
    Tier,
    commission,
    uncapped_commission,
)
from brokercalc.tests.strategies import FAST, non_negative

D = Decimal


@pytest.mark.parametrize(
    ("notional", "expected"),
    [
        # Below the minimum: 1000 * 25bp = 2.50 -> clamped up to 5.00.
        ("1000", "5.00"),
        # Exactly at the minimum: 2000 * 0.0025 = 5.00.
        ("2000", "5.00"),
        # Zero notional still pays the handling minimum.
        ("0", "5.00"),
        # Tier 1 boundary exactly: 10000 * 0.0025 = 25.00.
        ("10000", "25.00"),
        # One cent over: 25 + 0.01 * 0.0015 = 25.000015 -> 25.00.
        ("10000.01", "25.00"),
        # 50000: 25 + 40000 * 0.0015 = 25 + 60 = 85.00.
        ("50000", "85.00"),
        # Tier 2 boundary exactly: 25 + 90000 * 0.0015 = 160.00.
        ("100000", "160.00"),
        # 1,000,000: 160 + 900000 * 0.0008 = 160 + 720 = 880.00.
        ("1000000", "880.00"),
        # Max reached exactly at 100000 + (2500 - 160) / 0.0008 = 3,025,000.
        ("3025000", "2500.00"),
        # Above that: clamped to the maximum.
        ("10000000", "2500.00"),
        # Half-even rounding: 5002.50 * 0.0025 = 12.50625 -> 12.51.
        ("5002.50", "12.51"),
    ],
)
def test_standard_schedule_worked_examples(notional: str, expected: str) -> None:
    assert str(commission(D(notional), STANDARD_SCHEDULE, "USD")) == expected


def test_marginal_not_whole_notional_rate() -> None:
    # Whole-notional pricing would give 100000 * 8bp = 80; marginal gives 160.
    assert uncapped_commission(D("100000"), STANDARD_SCHEDULE) == D("160")
    # Just under the max: 3,000,000 -> 160 + 2,900,000 * 0.0008 = 2480.
    assert uncapped_commission(D("3000000"), STANDARD_SCHEDULE) == D("2480")


def test_commission_in_jpy_and_kwd() -> None:
    # 1,234,567 JPY: 25 + 135 + 1,134,567 * 0.0008 = 160 + 907.6536 = 1067.6536 -> 1068.
    assert str(commission(D("1234567"), STANDARD_SCHEDULE, "JPY")) == "1068"
    # 12345.678 KWD: 25 + 2345.678 * 0.0015 = 25 + 3.518517 = 28.518517 -> 28.519.
    assert str(commission(D("12345.678"), STANDARD_SCHEDULE, "KWD")) == "28.519"


def test_schedule_without_maximum() -> None:
    flat = FeeSchedule(tiers=(Tier(upto=None, rate_bps=D("10")),), minimum=D("0"))
    # 10 bps of 50,000,000 = 50,000, no cap.
    assert commission(D("50000000"), flat, "EUR") == D("50000.00")


def test_negative_notional_rejected() -> None:
    with pytest.raises(CalculationError, match="notional"):
        commission(D("-0.01"), STANDARD_SCHEDULE, "USD")


@pytest.mark.parametrize(
    ("tiers", "minimum", "maximum", "message"),
    [
        ((), D("0"), None, "at least one tier"),
        ((Tier(D("100"), D("1")),), D("0"), None, "last tier must be unbounded"),
        (
            (Tier(D("100"), D("1")), Tier(D("100"), D("1")), Tier(None, D("1"))),
            D("0"),
            None,
            "ascending",
        ),
        (
            (Tier(D("200"), D("1")), Tier(D("100"), D("1")), Tier(None, D("1"))),
            D("0"),
            None,
            "ascending",
        ),
        ((Tier(None, D("1")), Tier(None, D("1"))), D("0"), None, "only the last"),
        ((Tier(None, D("1")),), D("-1"), None, "minimum"),
        ((Tier(None, D("1")),), D("10"), D("9.99"), "below minimum"),
    ],
)
def test_invalid_schedules_rejected(
    tiers: tuple[Tier, ...], minimum: Decimal, maximum: Decimal | None, message: str
) -> None:
    with pytest.raises(InvalidFeeSchedule, match=message):
        FeeSchedule(tiers=tiers, minimum=minimum, maximum=maximum)


@pytest.mark.parametrize(("upto", "rate"), [(D("0"), D("1")), (None, D("-0.5"))])
def test_invalid_tiers_rejected(upto: Decimal | None, rate: Decimal) -> None:
    with pytest.raises(InvalidFeeSchedule):
        Tier(upto=upto, rate_bps=rate)


def test_min_equal_max_is_a_flat_fee() -> None:
    flat = FeeSchedule(tiers=(Tier(None, D("50")),), minimum=D("9.99"), maximum=D("9.99"))
    assert commission(D("1"), flat, "GBP") == D("9.99")
    assert commission(D("1000000"), flat, "GBP") == D("9.99")


@FAST
@given(a=non_negative(), b=non_negative())
def test_commission_monotone_and_within_clamp(a: Decimal, b: Decimal) -> None:
    lo, hi = sorted((a, b))
    fee_lo = commission(lo, STANDARD_SCHEDULE, "USD")
    fee_hi = commission(hi, STANDARD_SCHEDULE, "USD")
    assert fee_lo <= fee_hi
    for fee in (fee_lo, fee_hi):
        assert STANDARD_SCHEDULE.minimum <= fee <= D("2500")


@FAST
@given(notional=non_negative("20000000"))
def test_commission_never_exceeds_top_rate(notional: Decimal) -> None:
    # Marginal rates are at most 25bp, so the uncapped fee is <= 25bp of notional.
    assert uncapped_commission(notional, STANDARD_SCHEDULE) <= notional * D("0.0025")
