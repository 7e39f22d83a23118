"""Business-day calendars: settlement dates and instalment schedules.

Why business days: securities settle (cash and title change hands) only
when banks and the central securities depository are open, i.e. on
weekdays that are not public holidays.  A T+2 trade done on a Thursday
settles on Monday, not on Saturday.

Holidays are passed in by the caller (the Django side loads them from the
database per market) rather than hard-coded, because every market has its
own calendar and it changes every year.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from datetime import date, datetime, timedelta
from decimal import Decimal

from brokercalc.errors import CalculationError
from brokercalc.money import split_evenly

__all__ = [
    "add_business_days",
    "add_months",
    "instalment_schedule",
    "is_business_day",
    "settlement_date",
]

_SATURDAY = 5
_ONE_DAY = timedelta(days=1)


def _check_date(value: object, name: str) -> date:
    # ``datetime`` is a subclass of ``date`` but never equals one, so a
    # datetime would silently miss every holiday: refuse it.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
    return value


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise CalculationError(f"{name} must be >= {minimum}, got {value}")
    return value


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    """True if ``day`` is Monday-Friday and not one of ``holidays``."""
    return _check_date(day, "day").weekday() < _SATURDAY and day not in holidays


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """Return the date ``days`` business days after ``start``.

    A non-business ``start`` (weekend or holiday) is first rolled forward to
    the next business day, and counting starts from there.  Why: an order
    executed on a Saturday is booked as traded on Monday, so "T+2" of a
    Saturday trade is Wednesday.  Consequently ``days == 0`` returns
    ``start`` itself if it is a business day, otherwise the next one.
    """
    current = _check_date(start, "start")
    remaining = _check_count(days, "days", 0)
    closed = frozenset(holidays)
    try:
        while not is_business_day(current, closed):
            current += _ONE_DAY
        while remaining:
            current += _ONE_DAY
            if is_business_day(current, closed):
                remaining -= 1
    except OverflowError as exc:
        raise CalculationError("business-day arithmetic ran past date.max") from exc
    return current


def settlement_date(trade_date: date, lag: int = 2, holidays: Collection[date] = ()) -> date:
    """Return the settlement date of a trade: ``lag`` business days after it (T+lag).

    T+2 is the default because it is the EU/UK equity convention.
    """
    return add_business_days(trade_date, lag, holidays)


def add_months(start: date, months: int) -> date:
    """Return ``start`` moved by ``months`` calendar months, clamped to the month end.

    ``2024-01-31 + 1`` is ``2024-02-29`` (leap year) and ``2023-01-31 + 1`` is
    ``2023-02-28``: a payment "on the 31st" falls on the last day of shorter
    months instead of spilling into the next month.
    """
    _check_date(start, "start")
    if isinstance(months, bool) or not isinstance(months, int):
        raise TypeError(f"months must be an int, got {type(months).__name__}")
    month_index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(month_index, 12)
    if not 1 <= year <= 9999:
        raise CalculationError(f"adding {months} months to {start} leaves the calendar")
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last_day))


def instalment_schedule(
    total: Decimal,
    currency: str,
    first: date,
    count: int,
    interval_months: int = 1,
    *,
    holidays: Collection[date] = (),
) -> list[tuple[date, Decimal]]:
    """Split ``total`` into ``count`` dated instalments.

    Amounts come from :func:`~brokercalc.money.split_evenly` (they sum to the
    rounded total exactly; the first instalments carry the odd minor units).
    The k-th due date is ``first + k * interval_months`` months, computed
    from ``first`` every time (not from the previous instalment) so a plan
    starting on the 31st returns to the 31st after a short month; it is
    clamped to the month end and then rolled forward to a business day.
    """
    _check_date(first, "first")
    _check_count(count, "count", 1)
    _check_count(interval_months, "interval_months", 1)
    amounts = split_evenly(total, count, currency)
    closed = frozenset(holidays)
    return [
        (add_business_days(add_months(first, k * interval_months), 0, closed), amount)
        for k, amount in enumerate(amounts)
    ]
