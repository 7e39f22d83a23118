"""POST replays with an Idempotency-Key return the original response, never a second effect."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from restclient import RestClient


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"it-{uuid.uuid4()}"}


def test_customer_replay_creates_once(api: RestClient, unique: Callable[[str], str]) -> None:
    headers = key()
    body = {"name": "Replay", "email": f"{unique('replay')}@example.test"}
    first = api.post("/api/customers", body, headers=headers)
    second = api.post("/api/customers", body, headers=headers)
    assert first.status == second.status == 201, (first, second)
    assert first.json == second.json
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert api.get(f"/api/customers?email={body['email']}").json["count"] == 1


def test_order_replay_returns_same_order(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account()
    headers = key()
    body = {"account": account["id"], "instrument": "GOOG", "side": "buy", "quantity": "3"}
    ids = {api.post("/api/orders", body, headers=headers).json["id"] for _ in range(3)}
    assert len(ids) == 1
    assert api.get(f"/api/orders?account={account['id']}").json["count"] == 1


def test_settle_replay_debits_once(
    api: RestClient, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account("USD", balance="10000")
    order = api.post(
        "/api/orders",
        {"account": account["id"], "instrument": "ORCL", "side": "buy", "quantity": "2"},
    ).json
    api.post(f"/api/orders/{order['id']}/quote")
    api.post(f"/api/orders/{order['id']}/confirm")
    headers = key()
    first = api.post(f"/api/orders/{order['id']}/settle", headers=headers)
    replay = api.post(f"/api/orders/{order['id']}/settle", headers=headers)
    assert first.status == replay.status == 200, (first, replay)
    assert replay.json == first.json
    total = Decimal(first.json["quote"]["total"])
    assert Decimal(api.get(f"/api/accounts/{account['id']}").json["balance"]) == 10000 - total
    fresh = api.post(f"/api/orders/{order['id']}/settle", headers=key())
    assert fresh.status == 409, fresh


def test_quote_replay_returns_same_quote(api: RestClient) -> None:
    headers = key()
    body = {"account": 2, "instrument": "BMW", "side": "sell", "quantity": "7"}
    first = api.post("/api/quotes", body, headers=headers)
    second = api.post("/api/quotes", body, headers=headers)
    assert first.status == 201, first
    assert second.json["id"] == first.json["id"]


def test_key_reused_for_other_request_is_422(api: RestClient, unique: Callable[[str], str]) -> None:
    headers = key()
    api.post(
        "/api/customers", {"name": "A", "email": f"{unique('a')}@example.test"}, headers=headers
    )
    other_email = f"{unique('b')}@example.test"
    resp = api.post("/api/customers", {"name": "B", "email": other_email}, headers=headers)
    assert resp.status == 422, resp
    assert resp.json["error"]["code"] == "idempotency_key_reused"
    assert api.get(f"/api/customers?email={other_email}").json["count"] == 0
