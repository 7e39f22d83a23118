"""The supplier's prices are deterministic and its errors are JSON."""

from __future__ import annotations

from decimal import Decimal

from django.test import SimpleTestCase
from hypothesis import given, settings
from hypothesis import strategies as st

from supplier import prices


class PriceTableTests(SimpleTestCase):
    def test_native_price_is_table_value(self) -> None:
        self.assertEqual(prices.mid_price("AAPL", "USD"), Decimal("189.2500"))

    def test_cross_currency_conversion(self) -> None:
        # 180.50 EUR -> USD at 1/0.92
        self.assertEqual(prices.mid_price("SAP", "USD"), Decimal("196.1957"))

    def test_fx_rates_are_inverse_consistent(self) -> None:
        usd = prices.fx_rates("USD")
        self.assertEqual(usd["EUR"], Decimal("0.920000"))
        self.assertEqual(prices.fx_rates("EUR")["USD"], Decimal("1.086957"))

    def test_unknown_currency_raises(self) -> None:
        with self.assertRaises(KeyError):
            prices.mid_price("AAPL", "XXX")

    @settings(max_examples=50, deadline=None)
    @given(st.from_regex(r"\A[A-Z0-9]{1,12}\Z"))
    def test_any_symbol_has_a_stable_positive_price(self, symbol: str) -> None:
        first = prices.mid_price(symbol, "GBP")
        self.assertGreater(first, 0)
        self.assertEqual(first, prices.mid_price(symbol, "GBP"))


class SupplierViewTests(SimpleTestCase):
    def test_price_endpoint(self) -> None:
        data = self.client.get("/supplier/prices/NESN?currency=CHF").json()
        self.assertEqual(data, {"symbol": "NESN", "currency": "CHF", "mid": "97.5200"})

    def test_price_defaults_to_native_currency(self) -> None:
        self.assertEqual(self.client.get("/supplier/prices/7203").json()["currency"], "JPY")

    def test_bad_symbol_is_404_json(self) -> None:
        response = self.client.get("/supplier/prices/bad%20sym")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["error"]["code"], "unknown_symbol")

    def test_bad_currency_is_400_json(self) -> None:
        response = self.client.get("/supplier/fx?base=ZZZ")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "unknown_currency")

    def test_post_not_allowed(self) -> None:
        self.assertEqual(self.client.post("/supplier/fx").status_code, 405)
