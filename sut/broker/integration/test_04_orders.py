"""Order life cycles end to end: money and dates checked against independent arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from expectations import expected_quote, expected_settlement
from restclient import RestClient


def holidays(api: RestClient) -> list[date]:
    url: str | None = "/api/holidays?page_size=100"
    found: list[date] = []
    while url:
        data = api.get(url).json
        found += [date.fromisoformat(h["date"]) for h in data["results"]]
        url = data["next"]
    return found


def transition(api: RestClient, order_id: int, action: str, expect: int = 200) -> dict[str, Any]:
    resp = api.post(f"/api/orders/{order_id}/{action}")
    assert resp.status == expect, resp
    return resp.json


def balance(api: RestClient, account_id: int) -> Decimal:
    return Decimal(api.get(f"/api/accounts/{account_id}").json["balance"])


def place(api: RestClient, account: int, symbol: str, side: str, quantity: str) -> dict[str, Any]:
    resp = api.post(
        "/api/orders",
        {"account": account, "instrument": symbol, "side": side, "quantity": quantity},
    )
    assert resp.status == 201, resp
    assert resp.json["state"] == "draft" and resp.json["quote"] is None
    return resp.json


def test_full_buy_cycle(api: RestClient, new_account: Callable[..., dict[str, Any]]) -> None:
    """customer -> account -> quote -> order -> quote -> confirm -> settle, checked at each step."""
    account = new_account("USD", balance="50000")
    standalone = api.post(
        "/api/quotes",
        {"account": account["id"], "instrument": "MSFT", "side": "buy", "quantity": "12"},
    )
    assert standalone.status == 201, standalone
    order = place(api, account["id"], "MSFT", "buy", "12")
    quoted = transition(api, order["id"], "quote")
    assert quoted["state"] == "quoted"
    quote = quoted["quote"]
    assert quote["mid"] == standalone.json["mid"]  # same deterministic supplier price
    msft = api.get("/api/instruments/MSFT").json
    exp = expected_quote(
        "buy",
        Decimal("12"),
        Decimal(quote["mid"]),
        Decimal(msft["spread_bps"]),
        Decimal(msft["tax_rate"]),
        "USD",
    )
    assert Decimal(quote["total"]) == exp.total
    assert balance(api, account["id"]) == Decimal("50000")  # nothing moves before settlement

    confirmed = transition(api, order["id"], "confirm")
    trade_date = date.fromisoformat(confirmed["trade_date"])
    today = datetime.now(UTC).date()
    assert trade_date in (today, today - timedelta(days=1))
    assert confirmed["settlement_date"] is None

    settled = transition(api, order["id"], "settle")
    assert settled["state"] == "settled"
    assert date.fromisoformat(settled["settlement_date"]) == expected_settlement(
        trade_date, holidays(api)
    )
    assert balance(api, account["id"]) == Decimal("50000") - exp.total
    assert api.get(f"/api/orders/{order['id']}").json == settled


def test_full_sell_cycle_credits_eur(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account("EUR", balance="0")
    order = place(api, account["id"], "SAP", "sell", "40")
    quote = transition(api, order["id"], "quote")["quote"]
    sap = api.get("/api/instruments/SAP").json
    exp = expected_quote(
        "sell",
        Decimal("40"),
        Decimal(quote["mid"]),
        Decimal(sap["spread_bps"]),
        Decimal(sap["tax_rate"]),
        "EUR",
    )
    assert Decimal(quote["unit_price"]) < Decimal(quote["mid"])
    transition(api, order["id"], "confirm")
    transition(api, order["id"], "settle")
    assert balance(api, account["id"]) == exp.total


def test_gbp_buy_with_stamp_duty(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account("GBP", balance="20000")
    order = place(api, account["id"], "AZN", "buy", "33")
    quote = transition(api, order["id"], "quote")["quote"]
    assert Decimal(quote["tax"]) > 0
    transition(api, order["id"], "confirm")
    transition(api, order["id"], "settle")
    assert balance(api, account["id"]) == Decimal("20000") - Decimal(quote["total"])


def test_requote_then_cancel_moves_no_money(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account("USD", balance="1000")
    order = place(api, account["id"], "INTC", "buy", "5")
    first = transition(api, order["id"], "quote")["quote"]
    second = transition(api, order["id"], "quote")["quote"]
    assert second["id"] != first["id"]
    transition(api, order["id"], "confirm")
    assert transition(api, order["id"], "cancel")["state"] == "cancelled"
    assert balance(api, account["id"]) == Decimal("1000")
    for action in ("quote", "confirm", "settle", "cancel"):
        transition(api, order["id"], action, expect=409)


def test_insufficient_funds_is_409_and_order_stays_confirmed(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account("USD", balance="100", credit_limit="50")
    order = place(api, account["id"], "NVDA", "buy", "1")
    transition(api, order["id"], "quote")
    transition(api, order["id"], "confirm")
    resp = api.post(f"/api/orders/{order['id']}/settle")
    assert resp.status == 409, resp
    assert resp.json["error"]["code"] == "insufficient_funds"
    assert api.get(f"/api/orders/{order['id']}").json["state"] == "confirmed"
    assert balance(api, account["id"]) == Decimal("100")
    assert transition(api, order["id"], "cancel")["state"] == "cancelled"


@pytest.mark.parametrize(
    ("order_id", "action"),
    [
        (1, "confirm"),  # draft: must be quoted first
        (1, "settle"),
        (3, "quote"),  # confirmed: no re-pricing
        (3, "confirm"),
        (4, "settle"),  # settled: terminal
        (4, "cancel"),
        (5, "quote"),  # cancelled: terminal
        (5, "settle"),
    ],
)
def test_invalid_transitions_on_fixture_orders(api: RestClient, order_id: int, action: str) -> None:
    before = api.get(f"/api/orders/{order_id}").json
    resp = api.post(f"/api/orders/{order_id}/{action}")
    assert resp.status == 409, resp
    assert resp.json["error"]["code"] == "invalid_transition"
    assert before["state"] in resp.json["error"]["message"]
    assert api.get(f"/api/orders/{order_id}").json == before


def test_expired_fixture_quote_cannot_be_confirmed(api: RestClient) -> None:
    resp = api.post("/api/orders/2/confirm")
    assert resp.status == 409, resp
    assert resp.json["error"]["code"] == "quote_expired"
    assert api.get("/api/orders/2").json["state"] == "quoted"


def test_settled_fixture_order_dates(api: RestClient) -> None:
    order = api.get("/api/orders/4").json
    trade = date.fromisoformat(order["trade_date"])
    assert date.fromisoformat(order["settlement_date"]) == expected_settlement(trade, holidays(api))
