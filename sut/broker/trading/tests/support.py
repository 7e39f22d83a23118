"""Test support: a real HTTP stand-in for the supplier, and data builders.

The upstream failure modes are exercised over a real socket (http.server on
127.0.0.1, port 0) rather than by mocking urllib, so timeouts, refused
connections and malformed payloads go through the same code path as in
production.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trading.models import Account, Customer, Instrument, Order, Side


class _Handler(BaseHTTPRequestHandler):
    server: FakeSupplier

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        mode = self.server.mode
        if mode == "slow":
            time.sleep(self.server.delay)
        if mode == "error":
            self._send(500, b'{"error": "boom"}')
        elif mode == "garbage":
            self._send(200, b"<html>not json</html>")
        elif mode == "no_mid":
            self._send(200, json.dumps({"symbol": "X", "currency": "USD"}).encode())
        elif mode == "negative":
            self._send(200, json.dumps({"mid": "-3", "currency": "USD"}).encode())
        else:
            currency = self.path.split("currency=")[-1] if "currency=" in self.path else "USD"
            body = {"symbol": "X", "currency": currency, "mid": str(self.server.mid)}
            self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests); nothing to do


class FakeSupplier(ThreadingHTTPServer):
    """A supplier on 127.0.0.1:<free port> whose behaviour is set by ``mode``.

    Modes: ``ok`` (price ``mid``), ``error`` (HTTP 500), ``garbage`` (not
    JSON), ``no_mid`` (JSON without a price), ``negative`` (price <= 0),
    ``slow`` (answers after ``delay`` seconds).
    """

    daemon_threads = True
    block_on_close = False
    mode: str = "ok"
    mid: Decimal = Decimal("100")
    delay: float = 2.0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/supplier/"

    def start(self) -> FakeSupplier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/supplier/"


def make_customer(email: str = "c@example.com", name: str = "Cust") -> Customer:
    return Customer.objects.create(name=name, email=email)


def make_account(
    customer: Customer | None = None,
    currency: str = "USD",
    balance: str = "10000",
    credit_limit: str = "0",
) -> Account:
    customer = customer or make_customer(email=f"owner-{Customer.objects.count()}@example.com")
    return Account.objects.create(
        customer=customer,
        currency=currency,
        balance=Decimal(balance),
        credit_limit=Decimal(credit_limit),
    )


def make_instrument(
    symbol: str = "ACME", spread_bps: str = "10", tax_rate: str = "0", active: bool = True
) -> Instrument:
    return Instrument.objects.create(
        symbol=symbol,
        name=f"{symbol} Corp",
        currency="USD",
        spread_bps=Decimal(spread_bps),
        tax_rate=Decimal(tax_rate),
        active=active,
    )


def make_order(
    account: Account, instrument: Instrument, side: str = Side.BUY, quantity: str = "10"
) -> Order:
    return Order.objects.create(
        account=account, instrument=instrument, side=side, quantity=Decimal(quantity)
    )
