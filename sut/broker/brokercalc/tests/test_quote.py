"""Tests for :mod:`brokercalc.quote`: execution price and the full breakdown."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokercalc import (
    STANDARD_SCHEDULE,
    CalculationError,
    FeeSchedule,
    QuoteBreakdown,
    Side,
    Tier,
    UnknownCurrency,
    execution_price,
    minor_unit,
    price_quote,
)
from brokercalc.tests.strategies import FAST, amounts, currencies

D = Decimal


def test_side_is_a_str_enum() -> None:
    stored: str = "buy"  # as read back from a CharField
    assert stored == Side.BUY
    assert Side("sell") is Side.SELL


def test_buy_quote_worked_example() -> None:
    # mid 50, spread 10bp: BUY price = 50 * (1 + 10/2/10000) = 50 * 1.0005 = 50.025000
    # notional = 100 * 50.025 = 5002.50
    # commission = 5002.50 * 0.0025 = 12.50625 -> 12.51
    # tax = 5002.50 * 0.005 = 25.0125 -> rounded up 25.02
    # total = 5002.50 + 12.51 + 25.02 = 5040.03
    q = price_quote(
        side=Side.BUY,
        quantity=D("100"),
        mid=D("50"),
        spread_bps=D("10"),
        currency="GBP",
        tax_rate=D("0.005"),
    )
    assert q == QuoteBreakdown(
        side=Side.BUY,
        quantity=D("100"),
        unit_price=D("50.025000"),
        notional=D("5002.50"),
        commission=D("12.51"),
        tax=D("25.02"),
        total=D("5040.03"),
        currency="GBP",
    )
    assert str(q.unit_price) == "50.025000"


def test_sell_quote_worked_example() -> None:
    # SELL price = 50 * 0.9995 = 49.975000; notional = 100 * 49.975 = 4997.50
    # commission = 4997.50 * 0.0025 = 12.49375 -> 12.49; no tax on a sell
    # total = 4997.50 - 12.49 - 0 = 4985.01
    q = price_quote(
        side=Side.SELL,
        quantity=D("100"),
        mid=D("50"),
        spread_bps=D("10"),
        currency="GBP",
        tax_rate=D("0.005"),
    )
    assert (q.unit_price, q.notional, q.commission, q.tax, q.total) == (
        D("49.975000"),
        D("4997.50"),
        D("12.49"),
        D("0.00"),
        D("4985.01"),
    )


def test_jpy_quote_has_no_decimals_and_price_has_six() -> None:
    # mid 1234.5678, spread 3bp: 1234.5678 * 1.00015 = 1234.75298517 -> 1234.752985
    # notional = 7 * 1234.752985 = 8643.270895 -> 8643 JPY
    # commission = 8643 * 0.0025 = 21.6075 -> 22 (above the 5 minimum)
    # total = 8643 + 22 + 0 = 8665
    q = price_quote(
        side=Side.BUY, quantity=D("7"), mid=D("1234.5678"), spread_bps=D("3"), currency="jpy"
    )
    assert q.as_dict() == {
        "side": "buy",
        "quantity": "7",
        "unit_price": "1234.752985",
        "notional": "8643",
        "commission": "22",
        "tax": "0",
        "total": "8665",
        "currency": "JPY",
    }


def test_kwd_quote_three_decimals() -> None:
    # mid 2, spread 0: price 2.000000; notional 3.5 * 2 = 7.000 KWD
    # commission 7 * 0.0025 = 0.0175 -> minimum 5.000; total SELL = 7 - 5 = 2.000
    q = price_quote(
        side=Side.SELL, quantity=D("3.5"), mid=D("2"), spread_bps=D("0"), currency="KWD"
    )
    assert str(q.notional) == "7.000"
    assert str(q.commission) == "5.000"
    assert str(q.total) == "2.000"


def test_tiny_sell_can_have_negative_total() -> None:
    # notional 1.00, minimum commission 5.00 -> client receives -4.00.
    q = price_quote(side=Side.SELL, quantity=D("1"), mid=D("1"), spread_bps=D("0"), currency="USD")
    assert q.total == D("-4.00")


def test_custom_schedule_is_used() -> None:
    free = FeeSchedule(tiers=(Tier(None, D("0")),), minimum=D("0"))
    q = price_quote(
        side="buy",  # type: ignore[arg-type]
        quantity=D("2"),
        mid=D("10"),
        spread_bps=D("0"),
        currency="EUR",
        schedule=free,
    )
    assert q.side is Side.BUY
    assert q.total == D("20.00")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity": D("0")}, "quantity"),
        ({"quantity": D("-1")}, "quantity"),
        ({"mid": D("0")}, "mid"),
        ({"mid": D("-5")}, "mid"),
        ({"spread_bps": D("-1")}, "spread"),
        ({"spread_bps": D("20000")}, "spread"),
        ({"tax_rate": D("2")}, "tax rate"),
        ({"side": "short"}, "side"),
    ],
)
def test_invalid_quote_inputs(overrides: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {
        "side": Side.BUY,
        "quantity": D("1"),
        "mid": D("100"),
        "spread_bps": D("5"),
        "currency": "USD",
    }
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=message) as info:
        price_quote(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, CalculationError)


def test_unknown_currency_and_float_inputs() -> None:
    with pytest.raises(UnknownCurrency):
        price_quote(side=Side.BUY, quantity=D("1"), mid=D("1"), spread_bps=D("0"), currency="XYZ")
    with pytest.raises(TypeError, match="float"):
        price_quote(side=Side.BUY, quantity=D("1"), mid=1.5, spread_bps=D("0"), currency="USD")  # type: ignore[arg-type]


def test_execution_price_rounds_half_even_to_six_places() -> None:
    # 1.0000005 * (1 + 0) -> tie at the 7th place, 0 is even -> 1.000000
    assert str(execution_price(Side.BUY, D("1.0000005"), D("0"))) == "1.000000"
    assert str(execution_price(Side.BUY, D("1.0000015"), D("0"))) == "1.000002"


def test_as_dict_is_json_ready_and_round_trips() -> None:
    q = price_quote(
        side=Side.BUY, quantity=D("1E+3"), mid=D("12.5"), spread_bps=D("4"), currency="USD"
    )
    data = q.as_dict()
    assert data["quantity"] == "1000"  # fixed point, not "1E+3"
    assert json.loads(json.dumps(data)) == data
    assert QuoteBreakdown.from_dict(data) == q
    with pytest.raises(CalculationError, match="total"):
        QuoteBreakdown.from_dict({k: v for k, v in data.items() if k != "total"})


def test_breakdown_is_frozen() -> None:
    q = price_quote(side=Side.BUY, quantity=D("1"), mid=D("1"), spread_bps=D("0"), currency="USD")
    with pytest.raises(AttributeError):
        q.total = D("0")  # type: ignore[misc]


quote_inputs = st.fixed_dictionaries(
    {
        "quantity": amounts("0.001", "100000", 3),
        "mid": amounts("0.01", "5000", 4),
        "spread_bps": amounts("0", "500", 2),
        "currency": currencies,
        "tax_rate": amounts("0", "0.01", 4),
    }
)


@FAST
@given(inputs=quote_inputs)
def test_buy_total_at_least_sell_total(inputs: dict[str, Decimal]) -> None:
    buy = price_quote(side=Side.BUY, schedule=STANDARD_SCHEDULE, **inputs)  # type: ignore[arg-type]
    sell = price_quote(side=Side.SELL, schedule=STANDARD_SCHEDULE, **inputs)  # type: ignore[arg-type]
    assert buy.total >= sell.total
    assert buy.unit_price >= sell.unit_price
    assert sell.tax == 0


@FAST
@given(inputs=quote_inputs, side=st.sampled_from(Side))
def test_breakdown_components_are_consistent(inputs: dict[str, Decimal], side: Side) -> None:
    q = price_quote(side=side, **inputs)  # type: ignore[arg-type]
    sign = 1 if side is Side.BUY else -1
    assert q.total == q.notional + sign * (q.commission + q.tax)
    assert abs(q.notional - q.quantity * q.unit_price) <= minor_unit(q.currency) / 2
    assert q.unit_price.as_tuple().exponent == -6
    assert QuoteBreakdown.from_dict(q.as_dict()) == q
