"""The server aborts this connection the first time (SO_LINGER 0), answers afterwards.

The first attempt fails with ``ConnectionResetError: [Errno 104] Connection reset by
peer``; run under a retry policy, the second attempt passes, and readiness must report the
test as passed-with-retries, not as a plain pass.
"""

from __future__ import annotations

import http.client

from conftest import TIMEOUT_S, Server


def test_linger_zero_close_once(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/linger0-once")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"linger0-once: second call\n")
    finally:
        conn.close()
