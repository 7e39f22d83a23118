"""Configuration of the REST integration suite (plain HTTP, no Django).

The target server comes from ``--base-url`` or the ``BROKER_BASE_URL``
environment variable; with neither, the run stops with a usage error rather
than guessing a host.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from restclient import RestClient


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        default=None,
        help="base URL of the live broker server, e.g. http://127.0.0.1:8765 "
        "(default: $BROKER_BASE_URL)",
    )


def _base_url(config: pytest.Config) -> str | None:
    return config.getoption("--base-url") or os.environ.get("BROKER_BASE_URL") or None


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.collectonly:
        return
    if not _base_url(config):
        raise pytest.UsageError(
            "the integration suite needs the server's address: pass --base-url URL "
            "or set BROKER_BASE_URL"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"integration: {RestClient.total_requests} HTTP requests")


@pytest.fixture(scope="session")
def api(pytestconfig: pytest.Config) -> RestClient:
    """The client for the server under test."""
    url = _base_url(pytestconfig)
    assert url
    return RestClient(url)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Makes names unique per call so repeated runs never collide on unique fields."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def new_account(api: RestClient, unique: Callable[[str], str]) -> Callable[..., dict[str, Any]]:
    """Opens a fresh customer and account: tests never mutate fixture balances."""

    def make(
        currency: str = "USD", balance: str = "100000", credit_limit: str = "0"
    ) -> dict[str, Any]:
        email = f"{unique('it')}@example.test"
        customer = api.post("/api/customers", {"name": "Integration Test", "email": email})
        assert customer.status == 201, customer
        account = api.post(
            "/api/accounts",
            {
                "customer": customer.json["id"],
                "currency": currency,
                "balance": balance,
                "credit_limit": credit_limit,
            },
        )
        assert account.status == 201, account
        return account.json

    return make
