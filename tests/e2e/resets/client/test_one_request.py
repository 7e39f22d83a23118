"""Tests of one request each: under --faults=resets (every 2nd data segment to the server
answered with a reset by the firewall), each attempt is reset or not, alternately, so a
retry policy of one more attempt makes every test pass."""

from __future__ import annotations

import http.client

import pytest
from conftest import TIMEOUT_S, Server


@pytest.mark.parametrize("n", range(4))
def test_one_get(server: Server, n: int) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/ok")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200 and body == b"ok\n"
