"""Error responses keep one JSON shape: 400, 404, 405, 409 and 422."""

from __future__ import annotations

import pytest
from restclient import Response, RestClient


def assert_error(resp: Response, status: int, code: str) -> dict:
    assert resp.status == status, resp
    assert resp.headers["content-type"] == "application/json"
    assert set(resp.json) == {"error"}
    error = resp.json["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing-here",
        "/api/orders/999999999",
        "/api/customers/999999999",
        "/api/accounts/999999999",
        "/api/quotes/999999999",
        "/api/instruments/NOSUCH",
        "/api/orders/",
    ],
)
def test_not_found_is_json(api: RestClient, path: str) -> None:
    assert_error(api.get(path), 404, "not_found")


def test_page_past_the_end_is_404(api: RestClient) -> None:
    assert_error(api.get("/api/instruments?page=9999&page_size=10"), 404, "page_not_found")


def test_bad_paging_parameters_are_400(api: RestClient) -> None:
    error = assert_error(api.get("/api/orders?page=0&page_size=1000"), 400, "validation_error")
    assert "page" in error["fields"] or "page_size" in error["fields"]


def test_wrong_method_is_405_with_allow(api: RestClient) -> None:
    resp = api.request("DELETE", "/api/orders")
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "GET, POST"
    assert_error(api.get("/api/orders/1/settle"), 405, "method_not_allowed")


def test_malformed_json_is_400(api: RestClient) -> None:
    assert_error(api.request("POST", "/api/orders", body=b"{not json"), 400, "invalid_json")


def test_order_validation_lists_fields(api: RestClient) -> None:
    resp = api.post(
        "/api/orders", {"account": 1, "instrument": "AAPL", "side": "hold", "quantity": "0"}
    )
    error = assert_error(resp, 400, "validation_error")
    assert set(error["fields"]) == {"side", "quantity"}
    assert error["fields"]["quantity"] == ["must be > 0"]


def test_unknown_references_are_422(api: RestClient) -> None:
    resp = api.post(
        "/api/orders", {"account": 999999999, "instrument": "AAPL", "side": "buy", "quantity": "1"}
    )
    assert "account" in assert_error(resp, 422, "unknown_reference")["fields"]
    resp = api.post(
        "/api/orders", {"account": 1, "instrument": "NOSUCH", "side": "buy", "quantity": "1"}
    )
    assert "instrument" in assert_error(resp, 422, "unknown_reference")["fields"]


def test_inactive_instrument_order_is_422(api: RestClient) -> None:
    resp = api.post(
        "/api/orders", {"account": 1, "instrument": "DELIST", "side": "buy", "quantity": "1"}
    )
    assert_error(resp, 422, "instrument_inactive")
