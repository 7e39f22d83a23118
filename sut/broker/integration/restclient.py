"""The one HTTP choke point of the REST integration suite.

Every request the suite sends goes through :meth:`RestClient.request`, built
on the standard library's ``http.client`` with a fresh connection per
request. That single place is deliberate: it counts requests for the run
summary, and a later feature hooks a retry ledger in exactly here. Until
then there are NO retries: a "Connection reset by peer" must surface as a
test failure, because finding those is what readiness is for.

This module must never import Django or the application: the client box has
only the integration folder.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    """A finished HTTP exchange: status, lower-cased headers, raw body, parsed JSON."""

    status: int
    headers: dict[str, str]
    body: bytes
    method: str = ""
    url: str = ""
    _json: Any = field(default=None, repr=False)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError if it is not JSON)."""
        if self._json is None:
            self._json = jsonlib.loads(self.body.decode("utf-8"))
        return self._json

    def __str__(self) -> str:
        return f"{self.method} {self.url} -> {self.status} {self.body[:500]!r}"


class RestClient:
    """Sends JSON requests to one base URL (e.g. ``http://127.0.0.1:8765``).

    ``total_requests`` counts requests across all clients of the process;
    ``requests`` counts those of this client.
    """

    total_requests = 0
    _lock = threading.Lock()

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.netloc = parts.netloc
        self.timeout = timeout
        self.requests = 0

    def _target(self, path: str) -> str:
        """A path, or an absolute URL on this server (``next`` links), as a request target."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            if parts.netloc != self.netloc:
                raise ValueError(f"refusing to follow {path!r}: not on {self.base_url}")
            return parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return self.prefix + path

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Send one request and read the whole response. No retries, by design.

        ``json`` is encoded as the body; ``body`` sends raw bytes instead (for
        malformed-input tests).
        """
        target = self._target(path)
        send_headers = {"Accept": "application/json", "Connection": "close"}
        payload: bytes | None = body
        if json is not None:
            payload = jsonlib.dumps(json).encode("utf-8")
        if payload is not None:
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        conn_class = (
            http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_class(self.host, self.port, timeout=self.timeout)
        with RestClient._lock:
            RestClient.total_requests += 1
        self.requests += 1
        try:
            conn.request(method, target, body=payload, headers=send_headers)
            raw = conn.getresponse()
            data = raw.read()
            resp_headers = {k.lower(): v for k, v in raw.getheaders()}
            return Response(raw.status, resp_headers, data, method, self.base_url + target)
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Response:
        """POST ``json`` to ``path``."""
        return self.request("POST", path, json=json, **kwargs)
