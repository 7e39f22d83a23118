"""Tests for :mod:`brokercalc.money`: currency exponents, rounding, even splits."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokercalc import (
    CURRENCY_EXPONENTS,
    CalculationError,
    UnknownCurrency,
    minor_unit,
    minor_units,
    quantize,
    split_evenly,
)
from brokercalc.tests.strategies import FAST, amounts, currencies

D = Decimal


@pytest.mark.parametrize(
    ("code", "expected"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("KWD", 3), ("SEK", 2)],
)
def test_minor_units_match_iso_4217(code: str, expected: int) -> None:
    assert minor_units(code) == expected
    assert CURRENCY_EXPONENTS[code] == expected


def test_currency_codes_are_case_and_space_insensitive() -> None:
    assert minor_units(" kwd ") == 3


def test_exponent_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["XXX"] = 9  # type: ignore[index]


@pytest.mark.parametrize("code", ["XYZ", "", "US", "dollar"])
def test_unknown_currency_names_the_code(code: str) -> None:
    with pytest.raises(UnknownCurrency, match=repr(code)) as info:
        minor_units(code)
    # Part of the common hierarchy so views catch it with one clause.
    assert isinstance(info.value, CalculationError)
    assert isinstance(info.value, ValueError)


def test_minor_unit_values() -> None:
    assert minor_unit("USD") == D("0.01")
    assert minor_unit("JPY") == D("1")
    assert minor_unit("KWD") == D("0.001")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # Half-even: 2.345 is exactly half-way, 4 is even -> 2.34; 2.355 -> 2.36.
        ("2.345", "USD", "2.34"),
        ("2.355", "USD", "2.36"),
        ("2.3451", "USD", "2.35"),
        # JPY has no minor unit: 1234.5 -> 1234 (even), 1235.5 -> 1236.
        ("1234.5", "JPY", "1234"),
        ("1235.5", "JPY", "1236"),
        # KWD has three decimals (fils): 1.23456 -> 1.235.
        ("1.23456", "KWD", "1.235"),
        ("7", "KWD", "7.000"),
    ],
)
def test_quantize_half_even_examples(amount: str, currency: str, expected: str) -> None:
    result = quantize(D(amount), currency)
    assert result == D(expected)
    # Same exponent too, i.e. the string form is exactly the expected one.
    assert str(result) == expected


def test_quantize_explicit_rounding_modes() -> None:
    assert quantize(D("1.001"), "USD", ROUND_CEILING) == D("1.01")
    assert quantize(D("-1.009"), "USD", ROUND_DOWN) == D("-1.00")


def test_quantize_never_returns_negative_zero() -> None:
    assert str(quantize(D("-0.001"), "USD")) == "0.00"


def test_quantize_rejects_float_and_non_finite() -> None:
    with pytest.raises(TypeError, match="float"):
        quantize(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(CalculationError, match="finite"):
        quantize(D("NaN"), "USD")
    with pytest.raises(CalculationError, match="rounding"):
        quantize(D("1"), "USD", "ROUND_SIDEWAYS")


def test_quantize_accepts_int_exactly() -> None:
    assert str(quantize(5, "USD")) == "5.00"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "parts", "currency", "expected"),
    [
        # 10000 cents / 3 = 3333 r 1 -> first share gets the extra cent.
        ("100.00", 3, "USD", ["33.34", "33.33", "33.33"]),
        # 10 yen / 4 = 2 r 2 -> two shares of 3, two of 2.
        ("10", 4, "JPY", ["3", "3", "2", "2"]),
        # 1000 fils / 3 = 333 r 1.
        ("1", 3, "KWD", ["0.334", "0.333", "0.333"]),
        # 0.01 into 3: one cent cannot be split, two shares are zero.
        ("0.01", 3, "USD", ["0.01", "0.00", "0.00"]),
        # The amount is rounded first: 100.005 -> 100.00 (half-even).
        ("100.005", 2, "USD", ["50.00", "50.00"]),
        # Negative amounts mirror the positive split.
        ("-0.10", 3, "USD", ["-0.04", "-0.03", "-0.03"]),
        ("42.42", 1, "EUR", ["42.42"]),
    ],
)
def test_split_evenly_examples(amount: str, parts: int, currency: str, expected: list[str]) -> None:
    assert [str(x) for x in split_evenly(D(amount), parts, currency)] == expected


@pytest.mark.parametrize("parts", [0, -1])
def test_split_evenly_rejects_non_positive_parts(parts: int) -> None:
    with pytest.raises(CalculationError, match="parts"):
        split_evenly(D("1"), parts, "USD")


def test_split_evenly_rejects_non_int_parts() -> None:
    with pytest.raises(TypeError):
        split_evenly(D("1"), 2.0, "USD")  # type: ignore[arg-type]


@FAST
@given(amount=amounts(), parts=st.integers(min_value=1, max_value=40), currency=currencies)
def test_split_evenly_properties(amount: Decimal, parts: int, currency: str) -> None:
    shares = split_evenly(amount, parts, currency)
    unit = minor_unit(currency)
    assert len(shares) == parts
    assert sum(shares, D(0)) == quantize(amount, currency)
    assert max(shares) - min(shares) <= unit
    # Every share is representable in the currency.
    assert all(share == quantize(share, currency) for share in shares)
    # Largest magnitude first.
    magnitudes = [abs(s) for s in shares]
    assert magnitudes == sorted(magnitudes, reverse=True)


@FAST
@given(amount=amounts(), parts=st.integers(min_value=1, max_value=12), currency=currencies)
def test_split_evenly_is_sign_symmetric(amount: Decimal, parts: int, currency: str) -> None:
    assert split_evenly(-amount, parts, currency) == [
        -s for s in split_evenly(amount, parts, currency)
    ]


@FAST
@given(amount=amounts(places=6), currency=currencies)
def test_quantize_is_idempotent_and_within_half_unit(amount: Decimal, currency: str) -> None:
    once = quantize(amount, currency)
    assert quantize(once, currency) == once
    assert abs(once - amount) <= minor_unit(currency) / 2
