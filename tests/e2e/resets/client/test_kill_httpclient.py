"""The server dies with this request's body unread: the test fails with ECONNRESET.

FINDINGS 4b: http.client raises ``ConnectionResetError: [Errno 104] Connection reset by
peer`` in both topologies. The exception is not caught: the layer must show a real failing
test, and the server is gone after it.
"""

from __future__ import annotations

import http.client

from conftest import BIG_BODY, TIMEOUT_S, Server


def test_post_to_a_server_that_dies_with_http_client(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request(
            "POST", "/kill", body=BIG_BODY, headers={"Content-Type": "application/octet-stream"}
        )
        response = conn.getresponse()
        assert response.status == 200, "the server should have died"
    finally:
        conn.close()
