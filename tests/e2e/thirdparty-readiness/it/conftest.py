"""Black-box HTTP tests of a running mysite: point them at a server and go.

    pytest it --base-url=http://127.0.0.1:8000     (or READINESS_BASE_URL=...)

The server must have loaded ../fixtures/notes.json and run collectstatic.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        default=os.environ.get("READINESS_BASE_URL"),
        help="URL of the live server (default: $READINESS_BASE_URL)",
    )


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, payload: Any = None) -> Reply:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return Reply(resp.status, resp.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, payload: Any) -> Reply:
        return self.request("POST", path, payload)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)


@pytest.fixture(scope="session")
def http(pytestconfig: pytest.Config) -> Http:
    base_url = pytestconfig.getoption("--base-url")
    if not base_url:
        raise pytest.UsageError("pass --base-url URL or set READINESS_BASE_URL")
    return Http(base_url)
