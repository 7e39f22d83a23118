"""Read-only endpoints against the known fixture data: health, catalogue, pagination."""

from __future__ import annotations

from decimal import Decimal

from restclient import RestClient

FIXTURE_SYMBOLS = {"AAPL", "MSFT", "SAP", "VOD", "7203", "DELIST", "ZZZZ"}


def walk(api: RestClient, path: str) -> tuple[list[dict], int, int]:
    """Follow ``next`` links from ``path``; return (items, count, pages)."""
    url: str | None = path
    items: list[dict] = []
    count = pages = 0
    while url:
        resp = api.get(url)
        assert resp.status == 200, resp
        data = resp.json
        assert set(data) == {"results", "page", "page_size", "count", "next"}
        assert data["page"] == pages + 1
        count = data["count"]
        items += data["results"]
        url = data["next"]
        pages += 1
    return items, count, pages


def test_health_reports_database(api: RestClient) -> None:
    resp = api.get("/api/health")
    assert resp.status == 200, resp
    assert resp.json["status"] == "ok"
    assert resp.json["database"].startswith("mysql ")


def test_walk_all_instruments_in_pages_of_4(api: RestClient) -> None:
    items, count, pages = walk(api, "/api/instruments?page_size=4")
    symbols = [i["symbol"] for i in items]
    assert len(symbols) == count == len(set(symbols))
    assert pages == -(-count // 4)
    assert symbols == sorted(symbols)
    assert set(symbols) >= FIXTURE_SYMBOLS


def test_page_sizes_agree(api: RestClient) -> None:
    small, _, _ = walk(api, "/api/instruments?page_size=3")
    large, _, pages = walk(api, "/api/instruments?page_size=100")
    assert pages == 1
    assert small == large


def test_active_filter_excludes_delisted(api: RestClient) -> None:
    items, _, _ = walk(api, "/api/instruments?active=true&page_size=10")
    assert "DELIST" not in {i["symbol"] for i in items}
    assert all(i["active"] for i in items)


def test_instrument_detail(api: RestClient) -> None:
    resp = api.get("/api/instruments/VOD")
    assert resp.status == 200, resp
    assert resp.json == {
        "symbol": "VOD",
        "name": "Vodafone Group plc",
        "currency": "GBP",
        "spread_bps": "15",
        "tax_rate": "0.005",
        "active": True,
    }


def test_walk_all_orders_includes_every_fixture_state(api: RestClient) -> None:
    items, count, _ = walk(api, "/api/orders?page_size=7")
    assert len(items) == count
    ids = [o["id"] for o in items]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    fixture_states = {o["id"]: o["state"] for o in items if o["id"] <= 5}
    assert fixture_states == {
        1: "draft",
        2: "quoted",
        3: "confirmed",
        4: "settled",
        5: "cancelled",
    }


def test_order_state_filter(api: RestClient) -> None:
    items, _, _ = walk(api, "/api/orders?state=settled&page_size=25")
    assert items and all(o["state"] == "settled" for o in items)
    assert 4 in {o["id"] for o in items}


def test_holidays_listed(api: RestClient) -> None:
    items, count, _ = walk(api, "/api/holidays?page_size=4")
    dates = [h["date"] for h in items]
    assert "2025-12-25" in dates and dates == sorted(dates) and count == len(dates)


def test_supplier_prices_are_deterministic(api: RestClient) -> None:
    first = api.get("/supplier/prices/AAPL?currency=USD")
    second = api.get("/supplier/prices/AAPL?currency=USD")
    assert first.status == 200, first
    assert first.json == second.json == {"symbol": "AAPL", "currency": "USD", "mid": "189.2500"}


def test_supplier_fx_cross_rates(api: RestClient) -> None:
    usd = api.get("/supplier/fx?base=USD").json["rates"]
    eur = api.get("/supplier/fx?base=EUR").json["rates"]
    # 1 EUR in USD is the inverse of 1 USD in EUR (to the 6 places published)
    assert abs(Decimal(eur["USD"]) * Decimal(usd["EUR"]) - 1) < Decimal("0.000001")
