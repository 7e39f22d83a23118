"""Client suites of the resets project: point them at a running server and go.

    pytest test_clean.py --base-url=http://127.0.0.1:8000     (or READINESS_BASE_URL=...)

Each file is one layer of the readiness suites next to this folder; all but test_clean.py
end with a reset on purpose (see ../resetsite/views.py).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

import pytest

# Big enough to fill the kernel's socket buffers: the server's process or socket goes
# away while part of it is still unread, or still being sent.
BIG_BODY = b"x" * 2_000_000
TIMEOUT_S = 30


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        default=os.environ.get("READINESS_BASE_URL"),
        help="URL of the live server (default: $READINESS_BASE_URL)",
    )


@dataclass(frozen=True)
class Server:
    url: str  # no trailing slash
    host: str
    port: int


@pytest.fixture(scope="session")
def server(pytestconfig: pytest.Config) -> Server:
    base_url = pytestconfig.getoption("--base-url")
    if not base_url:
        raise pytest.UsageError("pass --base-url URL or set READINESS_BASE_URL")
    parts = urllib.parse.urlsplit(base_url)
    assert parts.hostname, base_url
    return Server(base_url.rstrip("/"), parts.hostname, parts.port or 80)
