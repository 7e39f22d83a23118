"""Supplier endpoints: GET /supplier/prices/<symbol>?currency=XXX and GET /supplier/fx?base=XXX."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import prices


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@require_GET
def price(request: HttpRequest, symbol: str) -> JsonResponse:
    """The deterministic mid price of ``symbol`` in ``currency`` (default: its native one)."""
    try:
        native_ccy, _ = prices.native_price(symbol)
    except prices.UnknownSymbol:
        return _error(404, "unknown_symbol", f"no price for symbol {symbol!r}")
    currency = request.GET.get("currency", native_ccy)
    try:
        mid = prices.mid_price(symbol, currency)
    except KeyError:
        return _error(400, "unknown_currency", f"cannot price in currency {currency!r}")
    return JsonResponse({"symbol": symbol, "currency": currency, "mid": str(mid)})


@require_GET
def fx(request: HttpRequest) -> JsonResponse:
    """Units of every other currency per one ``base`` (default USD)."""
    base = request.GET.get("base", prices.BASE_CURRENCY)
    try:
        rates = prices.fx_rates(base)
    except KeyError:
        return _error(400, "unknown_currency", f"unknown base currency {base!r}")
    return JsonResponse({"base": base, "rates": {k: str(v) for k, v in rates.items()}})
