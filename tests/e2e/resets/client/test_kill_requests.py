"""The server dies with this request's body unread, seen through requests.

FINDINGS 4b: ``requests.exceptions.ConnectionError: ('Connection aborted.',
ConnectionResetError(104, 'Connection reset by peer'))`` all-on-one; with the client on
another host the reset hits while the body is still being sent, urllib3 swallows it and
then reads EOF: ``('Connection aborted.', RemoteDisconnected(...))``. Not caught.
"""

from __future__ import annotations

import requests
from conftest import BIG_BODY, TIMEOUT_S, Server


def test_post_to_a_server_that_dies_with_requests(server: Server) -> None:
    response = requests.post(f"{server.url}/kill", data=BIG_BODY, timeout=TIMEOUT_S)
    assert response.status_code == 200, "the server should have died"
