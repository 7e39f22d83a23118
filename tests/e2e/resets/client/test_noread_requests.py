"""The server answers without reading the body and closes: requests still sees a 200.

FINDINGS 2c: gunicorn closes the connection with the body unread, the kernel resets it,
and urllib3 swallows the reset on send and reads the response: the reset is invisible to
the test, only the capture and the counters show it. ``Connection: close`` makes gunicorn's
threaded (gthread) workers close at once too, as its sync workers always do, instead of
keeping the connection and draining the body.
"""

from __future__ import annotations

import requests
from conftest import BIG_BODY, TIMEOUT_S, Server


def test_post_to_a_view_that_never_reads_the_body_with_requests(server: Server) -> None:
    response = requests.post(
        f"{server.url}/noread",
        data=BIG_BODY,
        headers={"Connection": "close"},
        timeout=TIMEOUT_S,
    )
    assert (response.status_code, response.content) == (200, b"body not read\n")
