"""Upstream supplier failure modes, over real sockets on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import json
from decimal import Decimal

from django.test import TestCase, override_settings

from trading.models import Quote

from .support import FakeSupplier, closed_port_url, make_account, make_instrument


class UpstreamFailureTests(TestCase):
    supplier: FakeSupplier

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.supplier = FakeSupplier().start()
        cls.addClassCleanup(cls.supplier.stop)

    def setUp(self) -> None:
        self.supplier.mode = "ok"
        self.account = make_account()
        make_instrument(symbol="ACME")
        self.body = json.dumps(
            {"account": self.account.pk, "instrument": "ACME", "side": "buy", "quantity": "3"}
        )

    def quote(self, url: str | None = None, timeout: float = 2.0) -> tuple[int, dict]:
        with override_settings(
            BROKER_SUPPLIER_URL=url or self.supplier.url, BROKER_SUPPLIER_TIMEOUT=timeout
        ):
            response = self.client.post("/api/quotes", self.body, content_type="application/json")
        return response.status_code, response.json()

    def assertUpstream(self, status: int, body: dict, expected: int, code: str, url: str) -> None:
        self.assertEqual(status, expected, body)
        self.assertEqual(body["error"]["code"], code)
        self.assertIn(url, body["error"]["message"])
        self.assertEqual(Quote.objects.count(), 0)

    def test_ok_baseline(self) -> None:
        self.supplier.mid = Decimal("12.5")
        status, body = self.quote()
        self.assertEqual(status, 201, body)
        self.assertEqual(body["mid"], "12.5")

    def test_http_500_is_502(self) -> None:
        self.supplier.mode = "error"
        status, body = self.quote()
        self.assertUpstream(status, body, 502, "upstream_error", self.supplier.url)
        self.assertIn("500", body["error"]["message"])

    def test_garbage_payload_is_502(self) -> None:
        self.supplier.mode = "garbage"
        status, body = self.quote()
        self.assertUpstream(status, body, 502, "upstream_error", self.supplier.url)

    def test_missing_price_is_502(self) -> None:
        self.supplier.mode = "no_mid"
        status, body = self.quote()
        self.assertUpstream(status, body, 502, "upstream_error", self.supplier.url)

    def test_non_positive_price_is_502(self) -> None:
        self.supplier.mode = "negative"
        status, body = self.quote()
        self.assertUpstream(status, body, 502, "upstream_error", self.supplier.url)

    def test_slow_supplier_is_504(self) -> None:
        self.supplier.mode = "slow"
        self.supplier.delay = 1.5
        status, body = self.quote(timeout=0.3)
        self.assertUpstream(status, body, 504, "upstream_timeout", self.supplier.url)

    def test_refused_connection_is_502(self) -> None:
        url = closed_port_url()
        status, body = self.quote(url=url)
        self.assertUpstream(status, body, 502, "upstream_error", url)

    def test_order_stays_draft_when_upstream_fails(self) -> None:
        from .support import make_order

        order = make_order(self.account, make_instrument(symbol="BETA"))
        self.supplier.mode = "error"
        with override_settings(BROKER_SUPPLIER_URL=self.supplier.url):
            response = self.client.post(f"/api/orders/{order.pk}/quote")
        self.assertEqual(response.status_code, 502)
        order.refresh_from_db()
        self.assertEqual((order.state, order.quote_id), ("draft", None))
