"""Tests for :mod:`brokercalc.settlement`: business days, T+n, instalments."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokercalc import (
    CalculationError,
    add_business_days,
    add_months,
    instalment_schedule,
    is_business_day,
    quantize,
    settlement_date,
)
from brokercalc.tests.strategies import FAST, amounts, currencies

D = Decimal

XMAS_2025 = date(2025, 12, 25)  # Thursday
BOXING_2025 = date(2025, 12, 26)  # Friday
UK_HOLIDAYS = frozenset({XMAS_2025, BOXING_2025, date(2026, 1, 1)})


@pytest.mark.parametrize(
    ("trade", "lag", "expected"),
    [
        # Thursday T+2 -> Monday (skips Sat/Sun).
        (date(2024, 6, 6), 2, date(2024, 6, 10)),
        # Friday T+1 -> Monday.
        (date(2024, 6, 7), 1, date(2024, 6, 10)),
        # Friday T+0 -> same day.
        (date(2024, 6, 7), 0, date(2024, 6, 7)),
        # Leap day Thursday 2024-02-29 T+2 -> Monday 2024-03-04.
        (date(2024, 2, 29), 2, date(2024, 3, 4)),
        # Year end: Tuesday 2024-12-31 T+3 -> Friday 2025-01-03 (no holidays given).
        (date(2024, 12, 31), 3, date(2025, 1, 3)),
    ],
)
def test_settlement_examples(trade: date, lag: int, expected: date) -> None:
    assert settlement_date(trade, lag) == expected


def test_default_lag_is_t_plus_2() -> None:
    assert settlement_date(date(2024, 6, 6)) == date(2024, 6, 10)


def test_weekend_trade_date_rolls_to_monday_first() -> None:
    saturday, sunday = date(2024, 6, 8), date(2024, 6, 9)
    # Booked as Monday 10th; T+2 -> Wednesday 12th.
    assert settlement_date(saturday) == date(2024, 6, 12)
    assert settlement_date(sunday) == date(2024, 6, 12)
    assert add_business_days(saturday, 0) == date(2024, 6, 10)


def test_holiday_on_the_settlement_date() -> None:
    # Wednesday 24 Dec T+1 would be Thursday 25 (Christmas); 26 is Boxing Day;
    # 27/28 weekend -> Monday 29 Dec.
    assert settlement_date(date(2025, 12, 24), 1, UK_HOLIDAYS) == date(2025, 12, 29)
    # Without the calendar it would be the 25th: the holidays matter.
    assert settlement_date(date(2025, 12, 24), 1) == XMAS_2025


def test_trade_on_a_holiday_rolls_forward() -> None:
    # Christmas Day is closed; booked Monday 29th, T+2 -> Wed 31 Dec.
    assert settlement_date(XMAS_2025, 2, UK_HOLIDAYS) == date(2025, 12, 31)
    # T+3 hits New Year's Day (holiday) -> Friday 2 Jan 2026.
    assert settlement_date(XMAS_2025, 3, UK_HOLIDAYS) == date(2026, 1, 2)


def test_holidays_accept_any_collection() -> None:
    as_list = [XMAS_2025, BOXING_2025]
    assert add_business_days(date(2025, 12, 24), 1, as_list) == date(2025, 12, 29)


def test_is_business_day() -> None:
    assert is_business_day(date(2024, 6, 7))
    assert not is_business_day(date(2024, 6, 8))
    assert not is_business_day(XMAS_2025, UK_HOLIDAYS)


def test_invalid_day_counts_and_types() -> None:
    with pytest.raises(CalculationError, match="days"):
        add_business_days(date(2024, 6, 6), -1)
    with pytest.raises(TypeError):
        add_business_days(datetime(2024, 6, 6, 12, 0), 1)
    with pytest.raises(TypeError):
        add_business_days(date(2024, 6, 6), 1.0)  # type: ignore[arg-type]
    with pytest.raises(CalculationError):
        add_business_days(date.max, 1)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2023, 1, 31), 1, date(2023, 2, 28)),  # common year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 11, 30), 3, date(2025, 2, 28)),  # crosses the year
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 5, 15), 0, date(2024, 5, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_instalment_schedule_month_end_and_business_days() -> None:
    plan = instalment_schedule(D("100"), "USD", date(2024, 1, 31), 4)
    assert plan == [
        (date(2024, 1, 31), D("25.00")),  # Wednesday
        (date(2024, 2, 29), D("25.00")),  # leap day, Thursday
        # 31 March 2024 is a Sunday -> Monday 1 April.
        (date(2024, 4, 1), D("25.00")),
        # Computed from the start, not chained: back to the 30th (Tuesday).
        (date(2024, 4, 30), D("25.00")),
    ]


def test_instalment_schedule_uneven_amounts_and_interval() -> None:
    # 1000 JPY over 3 quarterly payments: 334, 333, 333; dates Jan 15, Apr 15, Jul 15 2024
    # (Mon, Mon, Mon).
    plan = instalment_schedule(D("1000"), "JPY", date(2024, 1, 15), 3, interval_months=3)
    assert [d for d, _ in plan] == [date(2024, 1, 15), date(2024, 4, 15), date(2024, 7, 15)]
    assert [str(a) for _, a in plan] == ["334", "333", "333"]


def test_instalment_schedule_uses_holidays() -> None:
    plan = instalment_schedule(D("2"), "EUR", date(2025, 11, 25), 2, holidays=UK_HOLIDAYS)
    # 25 Dec holiday, 26 holiday, weekend -> Monday 29 Dec.
    assert plan[1] == (date(2025, 12, 29), D("1.00"))


@pytest.mark.parametrize(("count", "interval"), [(0, 1), (3, 0), (-1, 1)])
def test_instalment_schedule_rejects_bad_counts(count: int, interval: int) -> None:
    with pytest.raises(CalculationError):
        instalment_schedule(D("10"), "USD", date(2024, 1, 1), count, interval)


dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@FAST
@given(
    trade=dates,
    lag=st.integers(min_value=0, max_value=10),
    holidays=st.frozensets(dates, max_size=30),
)
def test_settlement_is_a_business_day_on_or_after_trade(
    trade: date, lag: int, holidays: frozenset[date]
) -> None:
    settle = settlement_date(trade, lag, holidays)
    assert settle >= trade
    assert is_business_day(settle, holidays)
    # Exactly `lag` business days lie in (booked_trade, settle].
    booked = add_business_days(trade, 0, holidays)
    span = (settle - booked).days
    business = sum(
        is_business_day(booked + timedelta(days=i), holidays) for i in range(1, span + 1)
    )
    assert business == lag


@FAST
@given(
    total=amounts("0", "100000", 2),
    currency=currencies,
    first=dates,
    count=st.integers(min_value=1, max_value=24),
    interval=st.integers(min_value=1, max_value=6),
)
def test_instalment_schedule_properties(
    total: Decimal, currency: str, first: date, count: int, interval: int
) -> None:
    plan = instalment_schedule(total, currency, first, count, interval)
    assert len(plan) == count
    days = [d for d, _ in plan]
    assert days == sorted(days) and len(set(days)) == count
    assert all(is_business_day(d) for d in days)
    assert days[0] >= first
    assert sum((a for _, a in plan), D(0)) == quantize(total, currency)
