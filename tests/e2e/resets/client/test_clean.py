"""Plain requests that all succeed: the layer's ledger must stay empty of errors."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import requests
from conftest import BIG_BODY, TIMEOUT_S, Server


def test_health_with_http_client(
    server: Server, record_testsuite_property: Callable[[str, object], None]
) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200, body
    # In the JUnit XML: which database the deployed server really talks to.
    record_testsuite_property("server_database", json.loads(body)["database"])


def test_get_ok_with_http_client(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/ok")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok\n")
    finally:
        conn.close()


def test_post_read_body_with_http_client(server: Server) -> None:
    body = b"y" * 100_000
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        conn.request("POST", "/ok", body=body, headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok 100000\n")
    finally:
        conn.close()


def test_get_ok_with_requests(server: Server) -> None:
    response = requests.get(f"{server.url}/ok", timeout=TIMEOUT_S)
    assert (response.status_code, response.content) == (200, b"ok\n")


def test_post_big_body_that_is_read_with_requests(server: Server) -> None:
    response = requests.post(f"{server.url}/ok", data=BIG_BODY, timeout=TIMEOUT_S)
    assert (response.status_code, response.content) == (200, b"ok 2000000\n")


def test_two_requests_on_one_session(server: Server) -> None:
    with requests.Session() as session:
        for _ in range(2):
            response = session.get(f"{server.url}/health", timeout=TIMEOUT_S)
            assert response.status_code == 200
            assert response.json()["status"] == "ok"
