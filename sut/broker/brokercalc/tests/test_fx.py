"""Tests for :mod:`brokercalc.fx`: cross rates and conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from brokercalc import CalculationError, MissingRate, RateTable, UnknownCurrency, minor_unit
from brokercalc.tests.strategies import CURRENCIES, FAST, amounts, currencies

D = Decimal

TABLE = RateTable(
    base="USD",
    rates={
        "EUR": D("0.8"),
        "GBP": D("0.75"),
        "CHF": D("0.9"),
        "JPY": D("150"),
        "KWD": D("0.307"),
        "SEK": D("10.5"),
    },
)


def test_cross_via_base() -> None:
    # EUR->GBP = 0.75 / 0.8 = 0.9375 exactly.
    assert TABLE.cross("EUR", "GBP") == D("0.9375")
    # JPY->USD = 1 / 150, kept at full precision (not rounded to cents).
    assert abs(TABLE.cross("JPY", "USD") * 150 - 1) < D("1e-45")
    assert TABLE.cross("JPY", "USD") != D("0.01")
    assert TABLE.cross("USD", "USD") == 1
    assert TABLE.cross("eur", "eur") == 1


def test_convert_worked_examples() -> None:
    # 100 EUR -> GBP: 100 * 0.9375 = 93.75.
    assert TABLE.convert(D("100"), "EUR", "GBP") == D("93.75")
    # 10 USD -> JPY: 10 * 150 = 1500, no decimals.
    assert str(TABLE.convert(D("10"), "USD", "JPY")) == "1500"
    # 1 USD -> KWD: 0.307 with three decimals.
    assert str(TABLE.convert(D("1"), "USD", "KWD")) == "0.307"
    # 1 JPY -> EUR: 0.8 / 150 = 0.005333.. -> 0.01 (half-even, above the half).
    assert TABLE.convert(D("1"), "JPY", "EUR") == D("0.01")
    # 125 JPY -> USD: 125 / 150 = 0.8333.. -> 0.83.
    assert TABLE.convert(D("125"), "JPY", "USD") == D("0.83")


def test_missing_rate_is_keyerror_and_valueerror_naming_currency() -> None:
    table = RateTable(base="USD", rates={"EUR": D("0.8")})
    with pytest.raises(MissingRate, match="GBP") as info:
        table.convert(D("1"), "EUR", "GBP")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "no FX rate for GBP against base USD"


def test_unknown_currency_in_conversion() -> None:
    with pytest.raises(UnknownCurrency):
        TABLE.cross("USD", "ZZZ")


@pytest.mark.parametrize(
    "rates",
    [{"EUR": D("0")}, {"EUR": D("-1")}, {"USD": D("2")}, {"XXX": D("1")}],
)
def test_invalid_rates_rejected(rates: dict[str, Decimal]) -> None:
    with pytest.raises(CalculationError):
        RateTable(base="USD", rates=rates)


def test_float_rate_rejected() -> None:
    with pytest.raises(TypeError, match="float"):
        RateTable(base="USD", rates={"EUR": 0.8})  # type: ignore[dict-item]


def test_table_is_immutable_and_defensively_copied() -> None:
    source = {"EUR": D("0.8")}
    table = RateTable(base="usd", rates=source)
    source["EUR"] = D("5")
    assert table.cross("USD", "EUR") == D("0.8")
    assert table.base == "USD"
    with pytest.raises(TypeError):
        table.rates["EUR"] = D("1")  # type: ignore[index]
    assert table.currencies == frozenset({"USD", "EUR"})
    assert hash(table) == hash(RateTable(base="USD", rates={"EUR": D("0.80")}))


@FAST
@given(amount=amounts("0", "1000000", 3), source=currencies, target=currencies)
def test_round_trip_within_rounding(amount: Decimal, source: str, target: str) -> None:
    x = TABLE.convert(amount, source, source)  # x rounded to the source currency
    there = TABLE.convert(x, source, target)
    back = TABLE.convert(there, target, source)
    # Error budget: half a target unit (first rounding) carried back through
    # the rate, plus half a source unit (second rounding).
    bound = minor_unit(target) / 2 * TABLE.cross(target, source) + minor_unit(source) / 2
    assert abs(back - x) <= bound


@FAST
@given(a=amounts("0", "100000", 2), b=amounts("0", "100000", 2), target=currencies)
def test_convert_is_monotone(a: Decimal, b: Decimal, target: str) -> None:
    lo, hi = sorted((a, b))
    assert TABLE.convert(lo, "USD", target) <= TABLE.convert(hi, "USD", target)


def test_every_listed_currency_converts() -> None:
    for code in CURRENCIES:
        assert TABLE.convert(D("0"), "USD", code) == 0
