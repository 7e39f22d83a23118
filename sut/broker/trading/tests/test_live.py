"""End to end over a real live server: trading calls the supplier app of the same server.

With BROKER_SUPPLIER_URL unset, the supplier URL is derived from the request,
exactly as under ``manage.py testserver``.
"""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

from django.test import LiveServerTestCase, override_settings
from supplier.prices import mid_price

from .support import make_account, make_instrument


# The live server wraps the app in static/media file handlers that need these
# URL prefixes set; the broker itself serves no files, so they live only here.
@override_settings(BROKER_SUPPLIER_URL=None, STATIC_URL="/static/", MEDIA_URL="/media/")
class LiveServerTests(LiveServerTestCase):
    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.live_server_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())

    def test_quote_uses_the_servers_own_supplier(self) -> None:
        account = make_account(currency="EUR")
        make_instrument(symbol="IBM", spread_bps="0")
        status, quote = self.call(
            "POST",
            "/api/quotes",
            {"account": account.pk, "instrument": "IBM", "side": "buy", "quantity": "1"},
        )
        self.assertEqual(status, 201)
        self.assertEqual(Decimal(quote["mid"]), mid_price("IBM", "EUR"))
        self.assertEqual(quote["currency"], "EUR")

    def test_order_life_cycle_over_http(self) -> None:
        account = make_account(balance="100000")
        make_instrument(symbol="AAPL")
        _, order = self.call(
            "POST",
            "/api/orders",
            {"account": account.pk, "instrument": "AAPL", "side": "buy", "quantity": "4"},
        )
        for action in ("quote", "confirm", "settle"):
            status, order = self.call("POST", f"/api/orders/{order['id']}/{action}")
            self.assertEqual(status, 200)
        _, acct = self.call("GET", f"/api/accounts/{account.pk}")
        self.assertEqual(
            Decimal(acct["balance"]), Decimal("100000") - Decimal(order["quote"]["total"])
        )
