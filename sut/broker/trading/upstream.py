"""Client for the upstream price supplier, over real HTTP with the standard library.

Failures become ApiError so the REST layer answers with a clear JSON error
naming the upstream URL: 504 ``upstream_timeout`` when the supplier does not
answer within BROKER_SUPPLIER_TIMEOUT seconds, 502 ``upstream_error`` for a
refused connection, an HTTP error status, or a payload that is not what the
contract promises. No retries here: a retry policy belongs to the caller.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest

from .api import ApiError

log = logging.getLogger(__name__)


def supplier_base_url(request: HttpRequest | None) -> str:
    """The supplier base URL: the setting, else this very server's /supplier/.

    Deriving it from the incoming request keeps one ``manage.py testserver``
    self-contained; deployments that split the supplier out set
    BROKER_SUPPLIER_URL.
    """
    configured = settings.BROKER_SUPPLIER_URL
    if configured:
        return configured.rstrip("/") + "/"
    if request is None:
        raise ApiError(502, "upstream_error", "no supplier URL configured")
    return request.build_absolute_uri("/supplier/")


class SupplierClient:
    """Fetches mid prices and FX rates from the supplier."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = float(settings.BROKER_SUPPLIER_TIMEOUT if timeout is None else timeout)

    def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urlencode(params)
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            log.warning("supplier %s answered HTTP %s", url, exc.code)
            raise ApiError(
                502, "upstream_error", f"supplier {url} answered HTTP {exc.code}"
            ) from exc
        except TimeoutError as exc:
            log.warning("supplier %s timed out after %ss", url, self.timeout)
            raise ApiError(
                504, "upstream_timeout", f"supplier {url} did not answer within {self.timeout}s"
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ApiError(
                    504, "upstream_timeout", f"supplier {url} did not answer within {self.timeout}s"
                ) from exc
            log.warning("supplier %s unreachable: %s", url, exc.reason)
            raise ApiError(
                502, "upstream_error", f"supplier {url} unreachable: {exc.reason}"
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise ApiError(502, "upstream_error", f"supplier {url} failed: {exc}") from exc
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(
                502, "upstream_error", f"supplier {url} returned a payload that is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise ApiError(502, "upstream_error", f"supplier {url} returned an unexpected payload")
        return data

    def mid_price(self, symbol: str, currency: str) -> Decimal:
        """The supplier's mid price of ``symbol`` in ``currency``."""
        path = f"prices/{quote(symbol, safe='')}"
        data = self._get_json(path, {"currency": currency})
        url = f"{self.base_url}{path}"
        try:
            mid = Decimal(str(data["mid"]))
        except (KeyError, InvalidOperation, TypeError) as exc:
            raise ApiError(
                502, "upstream_error", f"supplier {url} returned no valid 'mid' price"
            ) from exc
        if not mid.is_finite() or mid <= 0:
            raise ApiError(502, "upstream_error", f"supplier {url} returned a non-positive price")
        if data.get("currency") not in (None, currency):
            raise ApiError(
                502,
                "upstream_error",
                f"supplier {url} priced in {data.get('currency')!r}, not {currency}",
            )
        return mid
