"""Quotes: every component recomputed here, across currencies, plus a high-volume loop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from expectations import expected_quote
from restclient import RestClient

# Fixture accounts (read-only use: quoting never moves money).
FIXTURE_ACCOUNTS = {1: "USD", 2: "EUR", 3: "GBP", 5: "JPY"}


def instruments(api: RestClient) -> list[dict[str, Any]]:
    resp = api.get("/api/instruments?active=true&page_size=100")
    assert resp.status == 200, resp
    return resp.json["results"]


def check_quote(quote: dict[str, Any], instrument: dict[str, Any]) -> None:
    exp = expected_quote(
        quote["side"],
        Decimal(quote["quantity"]),
        Decimal(quote["mid"]),
        Decimal(instrument["spread_bps"]),
        Decimal(instrument["tax_rate"]),
        quote["currency"],
    )
    got = {k: Decimal(quote[k]) for k in ("unit_price", "notional", "commission", "tax", "total")}
    assert got == exp.__dict__, (quote, exp)


def test_quote_matches_supplier_mid_and_rules(api: RestClient) -> None:
    vod = api.get("/api/instruments/VOD").json
    mid = api.get("/supplier/prices/VOD?currency=GBP").json["mid"]
    resp = api.post(
        "/api/quotes", {"account": 3, "instrument": "VOD", "side": "buy", "quantity": "15000"}
    )
    assert resp.status == 201, resp
    quote = resp.json
    assert Decimal(quote["mid"]) == Decimal(mid)
    assert Decimal(quote["tax"]) > 0  # VOD carries stamp duty on buys
    check_quote(quote, vod)
    assert api.get(f"/api/quotes/{quote['id']}").json == quote


def test_sell_pays_no_tax(api: RestClient) -> None:
    vod = api.get("/api/instruments/VOD").json
    resp = api.post(
        "/api/quotes", {"account": 3, "instrument": "VOD", "side": "sell", "quantity": "15000"}
    )
    assert resp.status == 201, resp
    assert resp.json["tax"] == "0.00"
    check_quote(resp.json, vod)


def test_jpy_quote_has_no_minor_units(api: RestClient) -> None:
    resp = api.post(
        "/api/quotes", {"account": 5, "instrument": "7203", "side": "buy", "quantity": "100"}
    )
    assert resp.status == 201, resp
    for key in ("notional", "commission", "tax", "total"):
        assert "." not in resp.json[key], resp.json


def test_large_order_hits_the_fee_cap(api: RestClient) -> None:
    nvda = api.get("/api/instruments/NVDA").json
    resp = api.post(
        "/api/quotes", {"account": 1, "instrument": "NVDA", "side": "buy", "quantity": "50000"}
    )
    assert resp.status == 201, resp
    assert resp.json["commission"] == "2500.00"
    check_quote(resp.json, nvda)


def test_quote_loop_over_catalogue_accounts_and_sides(api: RestClient) -> None:
    """The volume test: one quote per active instrument x fixture account x side."""
    catalogue = instruments(api)
    assert len(catalogue) >= 20
    sent = 0
    for instrument in catalogue:
        for account, currency in FIXTURE_ACCOUNTS.items():
            side = "buy" if (sent % 2 == 0) else "sell"
            quantity = str(1 + (sent * 37) % 500)
            resp = api.post(
                "/api/quotes",
                {
                    "account": account,
                    "instrument": instrument["symbol"],
                    "side": side,
                    "quantity": quantity,
                },
            )
            assert resp.status == 201, resp
            assert resp.json["currency"] == currency
            check_quote(resp.json, instrument)
            sent += 1
    assert sent == len(catalogue) * len(FIXTURE_ACCOUNTS)


def test_quote_list_filtered_by_account(api: RestClient) -> None:
    resp = api.get("/api/quotes?account=5&page_size=50")
    assert resp.status == 200, resp
    assert resp.json["count"] >= 1
    assert all(q["account"] == 5 for q in resp.json["results"])


def test_quote_for_inactive_instrument_is_422(api: RestClient) -> None:
    resp = api.post(
        "/api/quotes", {"account": 1, "instrument": "DELIST", "side": "buy", "quantity": "1"}
    )
    assert resp.status == 422, resp
    assert resp.json["error"]["code"] == "instrument_inactive"
