"""Creating customers and accounts, and the errors around them."""

from __future__ import annotations

from collections.abc import Callable

from restclient import RestClient


def test_create_customer_then_account(api: RestClient, unique: Callable[[str], str]) -> None:
    email = f"{unique('ada')}@example.test"
    customer = api.post("/api/customers", {"name": "Ada Test", "email": email})
    assert customer.status == 201, customer
    cid = customer.json["id"]
    account = api.post(
        "/api/accounts",
        {"customer": cid, "currency": "GBP", "balance": "1234.5", "credit_limit": "100"},
    )
    assert account.status == 201, account
    assert account.json["balance"] == "1234.50"
    assert account.json["credit_limit"] == "100.00"
    detail = api.get(f"/api/customers/{cid}")
    assert detail.json["accounts"] == [account.json["id"]]
    listed = api.get(f"/api/customers?email={email}")
    assert [c["id"] for c in listed.json["results"]] == [cid]
    by_customer = api.get(f"/api/accounts?customer={cid}")
    assert by_customer.json["count"] == 1


def test_duplicate_fixture_email_is_409(api: RestClient) -> None:
    resp = api.post("/api/customers", {"name": "Impostor", "email": "ada@example.com"})
    assert resp.status == 409, resp
    assert resp.json["error"]["code"] == "conflict"


def test_second_account_in_same_currency_is_409(api: RestClient) -> None:
    resp = api.post("/api/accounts", {"customer": 1, "currency": "USD"})
    assert resp.status == 409, resp
    assert resp.json["error"]["code"] == "conflict"


def test_customer_validation_shape(api: RestClient) -> None:
    resp = api.post("/api/customers", {"name": "", "email": "nope"})
    assert resp.status == 400, resp
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"name", "email"}
    assert all(isinstance(m, list) and m for m in error["fields"].values())


def test_account_validation_shape(api: RestClient) -> None:
    resp = api.post("/api/accounts", {"customer": "one", "currency": "usd", "credit_limit": "-5"})
    assert resp.status == 400, resp
    assert set(resp.json["error"]["fields"]) == {"customer", "currency", "credit_limit"}


def test_account_for_missing_customer_is_422(api: RestClient) -> None:
    resp = api.post("/api/accounts", {"customer": 987654321, "currency": "USD"})
    assert resp.status == 422, resp
    assert resp.json["error"]["code"] == "unknown_reference"
    assert "customer" in resp.json["error"]["fields"]
