"""The JSON API through Django's test client: shapes, pagination, idempotency, errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.test import TestCase

from trading.models import Account, Customer, Instrument, Order, Quote

from .support import FakeSupplier, make_account, make_customer, make_instrument, make_order


class ApiTestCase(TestCase):
    """Adds JSON helpers and a FakeSupplier that BROKER_SUPPLIER_URL points at."""

    supplier: FakeSupplier

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.supplier = FakeSupplier().start()
        cls.addClassCleanup(cls.supplier.stop)

    def setUp(self) -> None:
        self.supplier.mode = "ok"
        self.supplier.mid = Decimal("50")
        override = self.settings(BROKER_SUPPLIER_URL=self.supplier.url, BROKER_SUPPLIER_TIMEOUT=2)
        override.enable()
        self.addCleanup(override.disable)

    def post(self, path: str, data: Any = None, **headers: str) -> Any:
        body = "" if data is None else json.dumps(data)
        return self.client.post(path, body, content_type="application/json", headers=headers)

    def assertError(self, response: Any, status: int, code: str) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        error = response.json()["error"]
        self.assertEqual(error["code"], code)
        self.assertIsInstance(error["message"], str)
        return error


class HealthAndRoutingTests(ApiTestCase):
    def test_health_queries_database(self) -> None:
        data = self.client.get("/api/health").json()
        self.assertEqual(data["status"], "ok")
        self.assertIn("MariaDB", data["database"])

    def test_unknown_api_url_is_json_404(self) -> None:
        self.assertError(self.client.get("/api/no/such/thing"), 404, "not_found")

    def test_trailing_slash_is_not_redirected(self) -> None:
        self.assertError(self.client.get("/api/orders/"), 404, "not_found")

    def test_wrong_method_is_json_405_with_allow(self) -> None:
        response = self.client.delete("/api/customers")
        self.assertError(response, 405, "method_not_allowed")
        self.assertEqual(response["Allow"], "GET, POST")

    def test_get_on_transition_is_405(self) -> None:
        self.assertError(self.client.get("/api/orders/1/settle"), 405, "method_not_allowed")

    def test_post_without_csrf_token_is_accepted(self) -> None:
        client = self.client_class(enforce_csrf_checks=True)
        response = client.post(
            "/api/customers",
            json.dumps({"name": "N", "email": "csrf@example.com"}),
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 201)


class CustomerAccountTests(ApiTestCase):
    def test_create_customer(self) -> None:
        response = self.post("/api/customers", {"name": "Ada", "email": "ada@example.com"})
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertEqual(
            (body["name"], body["email"], body["accounts"]), ("Ada", "ada@example.com", [])
        )
        self.assertTrue(Customer.objects.filter(pk=body["id"]).exists())

    def test_duplicate_email_is_409(self) -> None:
        make_customer(email="dup@example.com")
        self.assertError(
            self.post("/api/customers", {"name": "X", "email": "dup@example.com"}), 409, "conflict"
        )

    def test_validation_lists_every_bad_field(self) -> None:
        error = self.assertError(
            self.post("/api/customers", {"email": "not-an-email"}), 400, "validation_error"
        )
        self.assertEqual(set(error["fields"]), {"name", "email"})

    def test_malformed_json_is_400(self) -> None:
        response = self.client.post("/api/customers", "{nope", content_type="application/json")
        self.assertError(response, 400, "invalid_json")

    def test_json_array_body_is_400(self) -> None:
        self.assertError(self.post("/api/customers", [1, 2]), 400, "invalid_json")

    def test_open_account_and_read_it_back(self) -> None:
        customer = make_customer()
        response = self.post(
            "/api/accounts", {"customer": customer.pk, "currency": "EUR", "balance": "250.5"}
        )
        self.assertEqual(response.status_code, 201, response.content)
        detail = self.client.get(f"/api/accounts/{response.json()['id']}").json()
        self.assertEqual((detail["currency"], detail["balance"]), ("EUR", "250.50"))

    def test_account_for_unknown_customer_is_422(self) -> None:
        error = self.assertError(
            self.post("/api/accounts", {"customer": 999999, "currency": "USD"}),
            422,
            "unknown_reference",
        )
        self.assertIn("customer", error["fields"])

    def test_unsupported_currency_is_400(self) -> None:
        customer = make_customer()
        error = self.assertError(
            self.post("/api/accounts", {"customer": customer.pk, "currency": "XXX"}),
            400,
            "validation_error",
        )
        self.assertIn("currency", error["fields"])

    def test_balance_below_credit_limit_is_400(self) -> None:
        customer = make_customer()
        body = {"customer": customer.pk, "currency": "USD", "balance": "-10", "credit_limit": "5"}
        error = self.assertError(self.post("/api/accounts", body), 400, "validation_error")
        self.assertIn("balance", error["fields"])

    def test_second_account_same_currency_is_409(self) -> None:
        account = make_account()
        body = {"customer": account.customer_id, "currency": "USD"}
        self.assertError(self.post("/api/accounts", body), 409, "conflict")

    def test_missing_detail_is_404(self) -> None:
        for path in (
            "/api/customers/999999",
            "/api/accounts/999999",
            "/api/orders/999999",
            "/api/quotes/999999",
            "/api/instruments/NOPE",
        ):
            with self.subTest(path=path):
                self.assertError(self.client.get(path), 404, "not_found")


class PaginationTests(ApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        for i in range(7):
            make_instrument(symbol=f"SYM{i}")

    def test_walk_all_pages(self) -> None:
        url: str | None = "/api/instruments?page_size=3"
        symbols: list[str] = []
        pages = 0
        while url:
            data = self.client.get(url).json()
            self.assertEqual(data["count"], 7)
            symbols += [item["symbol"] for item in data["results"]]
            url = data["next"]
            pages += 1
        self.assertEqual(pages, 3)
        self.assertEqual(symbols, sorted(f"SYM{i}" for i in range(7)))

    def test_next_is_absolute_and_keeps_filters(self) -> None:
        data = self.client.get("/api/instruments?active=true&page_size=2").json()
        self.assertEqual(
            data["next"], "http://testserver/api/instruments?active=true&page=2&page_size=2"
        )

    def test_last_page_has_null_next(self) -> None:
        data = self.client.get("/api/instruments?page=3&page_size=3").json()
        self.assertEqual((len(data["results"]), data["next"], data["page"]), (1, None, 3))

    def test_page_past_end_is_404(self) -> None:
        self.assertError(
            self.client.get("/api/instruments?page=4&page_size=3"), 404, "page_not_found"
        )

    def test_page_size_above_max_is_400(self) -> None:
        error = self.assertError(
            self.client.get("/api/instruments?page_size=101"), 400, "validation_error"
        )
        self.assertIn("page_size", error["fields"])

    def test_non_integer_page_is_400(self) -> None:
        self.assertError(self.client.get("/api/instruments?page=two"), 400, "validation_error")

    def test_empty_list_first_page_is_ok(self) -> None:
        data = self.client.get("/api/orders").json()
        self.assertEqual((data["results"], data["count"], data["next"]), ([], 0, None))

    def test_active_filter(self) -> None:
        make_instrument(symbol="OLD", active=False)
        data = self.client.get("/api/instruments?active=false").json()
        self.assertEqual([i["symbol"] for i in data["results"]], ["OLD"])


class QuoteAndOrderApiTests(ApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(balance="5000")
        self.instrument = make_instrument(symbol="ACME", spread_bps="10", tax_rate="0.005")

    def order_body(self, **overrides: Any) -> dict[str, Any]:
        body = {"account": self.account.pk, "instrument": "ACME", "side": "buy", "quantity": "20"}
        body.update(overrides)
        return body

    def test_quote_prices_with_brokercalc(self) -> None:
        response = self.post("/api/quotes", self.order_body())
        self.assertEqual(response.status_code, 201, response.content)
        q = response.json()
        # mid 50, +5 bps = 50.025; x20 = 1000.50; commission min 5.00;
        # tax 0.5% = 5.0025, rounded up to 5.01
        self.assertEqual(
            (q["mid"], q["unit_price"], q["notional"], q["commission"], q["tax"], q["total"]),
            ("50", "50.025", "1000.50", "5.00", "5.01", "1010.51"),
        )

    def test_quote_for_inactive_instrument_is_422(self) -> None:
        make_instrument(symbol="GONE", active=False)
        self.assertError(
            self.post("/api/quotes", self.order_body(instrument="GONE")), 422, "instrument_inactive"
        )

    def test_order_with_unknown_instrument_is_422(self) -> None:
        self.assertError(
            self.post("/api/orders", self.order_body(instrument="NOPE")), 422, "unknown_reference"
        )

    def test_order_quantity_must_be_positive(self) -> None:
        error = self.assertError(
            self.post("/api/orders", self.order_body(quantity="-1")), 400, "validation_error"
        )
        self.assertEqual(error["fields"], {"quantity": ["must be > 0"]})

    def test_float_quantity_and_too_many_places(self) -> None:
        error = self.assertError(
            self.post("/api/orders", self.order_body(quantity="1.23456")), 400, "validation_error"
        )
        self.assertIn("quantity", error["fields"])

    def test_full_life_cycle_over_api(self) -> None:
        order = self.post("/api/orders", self.order_body()).json()
        self.assertEqual(order["state"], "draft")
        for action, state in [("quote", "quoted"), ("confirm", "confirmed"), ("settle", "settled")]:
            response = self.post(f"/api/orders/{order['id']}/{action}")
            self.assertEqual(response.status_code, 200, response.content)
            self.assertEqual(response.json()["state"], state)
        final = self.client.get(f"/api/orders/{order['id']}").json()
        self.assertIsNotNone(final["settlement_date"])
        self.assertEqual(
            self.client.get(f"/api/accounts/{self.account.pk}").json()["balance"], "3989.49"
        )

    def test_invalid_transition_is_409(self) -> None:
        order = make_order(self.account, self.instrument)
        error = self.assertError(
            self.post(f"/api/orders/{order.pk}/settle"), 409, "invalid_transition"
        )
        self.assertIn("draft", error["message"])

    def test_cancelled_order_cannot_be_cancelled_again(self) -> None:
        order = make_order(self.account, self.instrument)
        self.assertEqual(self.post(f"/api/orders/{order.pk}/cancel").status_code, 200)
        self.assertError(self.post(f"/api/orders/{order.pk}/cancel"), 409, "invalid_transition")

    def test_transition_on_missing_order_is_404(self) -> None:
        self.assertError(self.post("/api/orders/999999/confirm"), 404, "not_found")

    def test_unknown_action_is_404(self) -> None:
        order = make_order(self.account, self.instrument)
        self.assertError(self.post(f"/api/orders/{order.pk}/explode"), 404, "not_found")

    def test_order_list_filters(self) -> None:
        make_order(self.account, self.instrument)
        cancelled = make_order(self.account, self.instrument)
        Order.objects.filter(pk=cancelled.pk).update(state="cancelled")
        data = self.client.get(f"/api/orders?account={self.account.pk}&state=cancelled").json()
        self.assertEqual([o["id"] for o in data["results"]], [cancelled.pk])
        self.assertError(self.client.get("/api/orders?state=lost"), 400, "validation_error")


class IdempotencyTests(ApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.account = make_account()
        make_instrument(symbol="ACME")

    def test_replay_returns_original_without_creating(self) -> None:
        body = {"account": self.account.pk, "instrument": "ACME", "side": "buy", "quantity": "1"}
        first = self.post("/api/orders", body, **{"Idempotency-Key": "key-1"})
        second = self.post("/api/orders", body, **{"Idempotency-Key": "key-1"})
        self.assertEqual((first.status_code, second.status_code), (201, 201))
        self.assertEqual(first.json(), second.json())
        self.assertEqual(second["Idempotent-Replayed"], "true")
        self.assertEqual(Order.objects.count(), 1)

    def test_replayed_quote_does_not_call_supplier_again(self) -> None:
        body = {"account": self.account.pk, "instrument": "ACME", "side": "sell", "quantity": "2"}
        self.post("/api/quotes", body, **{"Idempotency-Key": "q-1"})
        calls = len(self.supplier.requests)
        self.post("/api/quotes", body, **{"Idempotency-Key": "q-1"})
        self.assertEqual(len(self.supplier.requests), calls)
        self.assertEqual(Quote.objects.count(), 1)

    def test_same_key_different_body_is_422(self) -> None:
        self.post(
            "/api/customers", {"name": "A", "email": "a1@example.com"}, **{"Idempotency-Key": "k"}
        )
        response = self.post(
            "/api/customers", {"name": "B", "email": "b1@example.com"}, **{"Idempotency-Key": "k"}
        )
        self.assertError(response, 422, "idempotency_key_reused")
        self.assertFalse(Customer.objects.filter(email="b1@example.com").exists())

    def test_client_errors_are_replayed_too(self) -> None:
        order = Order.objects.create(
            account=self.account,
            instrument=Instrument.objects.get(symbol="ACME"),
            side="buy",
            quantity=1,
        )
        first = self.post(f"/api/orders/{order.pk}/settle", **{"Idempotency-Key": "s-1"})
        Order.objects.filter(pk=order.pk).update(state="cancelled")
        again = self.post(f"/api/orders/{order.pk}/settle", **{"Idempotency-Key": "s-1"})
        self.assertEqual(first.content, again.content)
        self.assertEqual(again["Idempotent-Replayed"], "true")

    def test_upstream_failure_is_not_stored(self) -> None:
        body = {"account": self.account.pk, "instrument": "ACME", "side": "buy", "quantity": "1"}
        self.supplier.mode = "error"
        self.assertError(
            self.post("/api/quotes", body, **{"Idempotency-Key": "u-1"}), 502, "upstream_error"
        )
        self.supplier.mode = "ok"
        self.assertEqual(
            self.post("/api/quotes", body, **{"Idempotency-Key": "u-1"}).status_code, 201
        )

    def test_without_key_posts_twice(self) -> None:
        body = {"account": self.account.pk, "instrument": "ACME", "side": "buy", "quantity": "1"}
        self.post("/api/orders", body)
        self.post("/api/orders", body)
        self.assertEqual(Order.objects.count(), 2)
        self.assertEqual(Account.objects.count(), 1)
