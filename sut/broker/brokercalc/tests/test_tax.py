"""Tests for :mod:`brokercalc.tax`: buy-only stamp duty, rounded up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from brokercalc import CalculationError, Side, minor_unit, transaction_tax
from brokercalc.tests.strategies import FAST, currencies, non_negative

D = Decimal


@pytest.mark.parametrize(
    ("notional", "rate", "currency", "expected"),
    [
        # 1000.00 * 0.5% = 5.00 exactly.
        ("1000.00", "0.005", "GBP", "5.00"),
        # 1000.01 * 0.005 = 5.00005 -> rounded UP to 5.01 (half-even would give 5.00).
        ("1000.01", "0.005", "GBP", "5.01"),
        # 12345 JPY * 0.001 = 12.345 -> 13 (no decimals, up).
        ("12345", "0.001", "JPY", "13"),
        # 1.001 KWD * 0.003 = 0.003003 -> 0.004.
        ("1.001", "0.003", "KWD", "0.004"),
        # Zero rate means zero tax.
        ("999.99", "0", "EUR", "0.00"),
    ],
)
def test_buy_tax_worked_examples(notional: str, rate: str, currency: str, expected: str) -> None:
    assert str(transaction_tax(D(notional), D(rate), Side.BUY, currency)) == expected


def test_sell_pays_no_tax() -> None:
    assert str(transaction_tax(D("1000000"), D("0.005"), Side.SELL, "GBP")) == "0.00"
    assert str(transaction_tax(D("1000000"), D("0.005"), Side.SELL, "JPY")) == "0"


def test_plain_string_side_accepted() -> None:
    assert transaction_tax(D("100"), D("0.01"), "buy", "USD") == D("1.00")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("notional", "rate", "side"),
    [
        (D("-1"), D("0.005"), Side.BUY),
        (D("100"), D("-0.001"), Side.BUY),
        (D("100"), D("1.5"), Side.SELL),
        (D("100"), D("0.005"), "hold"),
    ],
)
def test_invalid_tax_inputs(notional: Decimal, rate: Decimal, side: Side) -> None:
    with pytest.raises(CalculationError):
        transaction_tax(notional, rate, side, "USD")


@FAST
@given(
    notional=non_negative("1000000", 3),
    rate=non_negative("0.05", 5),
    currency=currencies,
)
def test_tax_rounds_up_by_less_than_one_unit(
    notional: Decimal, rate: Decimal, currency: str
) -> None:
    exact = notional * rate
    tax = transaction_tax(notional, rate, Side.BUY, currency)
    assert exact <= tax < exact + minor_unit(currency)
    assert transaction_tax(notional, rate, Side.SELL, currency) == 0
