"""JSON REST API views (plain Django; see api.py for the shared conventions).

Decimal amounts travel as JSON strings so no client ever sees a binary float.
Money is shown at the currency's exponent (brokercalc.CURRENCY_EXPONENTS).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from brokercalc import CURRENCY_EXPONENTS
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import services
from .api import (
    ApiError,
    Fields,
    ValidationError,
    api_view,
    idempotent,
    json_response,
    not_found,
    paginate,
    parse_json_object,
)
from .models import Account, Customer, Holiday, Instrument, Order, OrderState, Quote, Side
from .upstream import supplier_base_url

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


# --- rendering -----------------------------------------------------------------


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent notation ("2.5", "100")."""
    text = f"{value.normalize():f}"
    return text


def money(value: Decimal, currency: str) -> str:
    """An amount at the currency's number of minor-unit digits ("12.30", "1500")."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return f"{value.quantize(Decimal(1).scaleb(-exponent)):f}"


def render_customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.pk,
        "name": c.name,
        "email": c.email,
        "accounts": [a.pk for a in c.accounts.all()],
        "created_at": c.created_at.isoformat(),
    }


def render_account(a: Account) -> dict[str, Any]:
    return {
        "id": a.pk,
        "customer": a.customer_id,
        "currency": a.currency,
        "balance": money(a.balance, a.currency),
        "credit_limit": money(a.credit_limit, a.currency),
        "created_at": a.created_at.isoformat(),
    }


def render_instrument(i: Instrument) -> dict[str, Any]:
    return {
        "symbol": i.symbol,
        "name": i.name,
        "currency": i.currency,
        "spread_bps": plain(i.spread_bps),
        "tax_rate": plain(i.tax_rate),
        "active": i.active,
    }


def render_holiday(h: Holiday) -> dict[str, Any]:
    return {"date": h.date.isoformat(), "name": h.name}


def render_quote(q: Quote) -> dict[str, Any]:
    cur = q.currency
    return {
        "id": q.pk,
        "account": q.account_id,
        "instrument": q.instrument.symbol,
        "side": q.side,
        "quantity": plain(q.quantity),
        "currency": cur,
        "mid": plain(q.mid),
        "unit_price": plain(q.unit_price),
        "notional": money(q.notional, cur),
        "commission": money(q.commission, cur),
        "tax": money(q.tax, cur),
        "total": money(q.total, cur),
        "created_at": q.created_at.isoformat(),
        "expires_at": q.expires_at.isoformat(),
    }


def render_order(o: Order) -> dict[str, Any]:
    return {
        "id": o.pk,
        "account": o.account_id,
        "instrument": o.instrument.symbol,
        "side": o.side,
        "quantity": plain(o.quantity),
        "state": o.state,
        "quote": render_quote(o.quote) if o.quote is not None else None,
        "trade_date": o.trade_date.isoformat() if o.trade_date else None,
        "settlement_date": o.settlement_date.isoformat() if o.settlement_date else None,
        "created_at": o.created_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
    }


# --- lookups -------------------------------------------------------------------


def _id_filter(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ValidationError({name: ["must be a positive integer id"]})
    return int(raw)


def _referenced_account(account_id: int | None) -> Account:
    try:
        return Account.objects.get(pk=account_id)
    except Account.DoesNotExist:
        raise ApiError(
            422,
            "unknown_reference",
            f"account {account_id} does not exist",
            {"account": ["unknown account"]},
        ) from None


def _referenced_instrument(symbol: str) -> Instrument:
    try:
        return Instrument.objects.get(symbol=symbol)
    except Instrument.DoesNotExist:
        raise ApiError(
            422,
            "unknown_reference",
            f"instrument {symbol} does not exist",
            {"instrument": ["unknown instrument"]},
        ) from None


def _trade_fields(data: dict[str, Any]) -> tuple[Account, Instrument, str, Decimal]:
    """Validate the account/instrument/side/quantity shared by quotes and orders."""
    f = Fields(data)
    account_id = f.integer("account")
    symbol = f.string("instrument", max_length=12)
    side = f.choice("side", Side.values)
    quantity = f.decimal("quantity", positive=True)
    f.check()
    assert quantity is not None
    return _referenced_account(account_id), _referenced_instrument(symbol), side, quantity


# --- views ---------------------------------------------------------------------


@api_view(["GET"])
def health(request: HttpRequest) -> HttpResponse:
    """Liveness plus a real database round trip (deploy tools poll this)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
    except DatabaseError as exc:
        return JsonResponse(
            {"status": "error", "error": {"code": "database_unavailable", "message": str(exc)}},
            status=503,
        )
    return json_response(
        {
            "status": "ok",
            "database": f"{connection.vendor} {version}",
            "name": connection.settings_dict["NAME"],
        }
    )


@api_view(["GET", "POST"])
@idempotent
def customers(request: HttpRequest) -> HttpResponse:
    """List (``?email=``) or create customers; a duplicate email is a 409."""
    if request.method == "GET":
        qs = Customer.objects.prefetch_related("accounts")
        if email := request.GET.get("email"):
            qs = qs.filter(email=email)
        return paginate(request, qs, render_customer)
    f = Fields(parse_json_object(request))
    name = f.string("name", max_length=200)
    email = f.string("email", max_length=254)
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            f.add("email", "must be a valid email address")
    f.check()
    try:
        with transaction.atomic():
            customer = Customer.objects.create(name=name, email=email)
    except IntegrityError:
        raise ApiError(409, "conflict", f"a customer with email {email} already exists") from None
    return json_response(render_customer(customer), status=201)


@api_view(["GET"])
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        customer = Customer.objects.prefetch_related("accounts").get(pk=pk)
    except Customer.DoesNotExist:
        raise not_found(f"customer {pk}") from None
    return json_response(render_customer(customer))


@api_view(["GET", "POST"])
@idempotent
def accounts(request: HttpRequest) -> HttpResponse:
    """List (``?customer=``) or open accounts; one account per customer and currency."""
    if request.method == "GET":
        qs = Account.objects.all()
        if (customer_id := _id_filter(request, "customer")) is not None:
            qs = qs.filter(customer_id=customer_id)
        return paginate(request, qs, render_account)
    f = Fields(parse_json_object(request))
    customer_id = f.integer("customer")
    currency = f.string("currency", max_length=3)
    supported = [c for c in settings.BROKER_CURRENCIES if c in CURRENCY_EXPONENTS]
    if currency and (not CURRENCY_RE.match(currency) or currency not in supported):
        f.add("currency", f"must be one of: {', '.join(supported)}")
    balance = f.decimal("balance", required=False)
    credit_limit = f.decimal("credit_limit", required=False, minimum=Decimal("0"))
    balance = Decimal("0") if balance is None else balance
    credit_limit = Decimal("0") if credit_limit is None else credit_limit
    if "balance" not in f.errors and "credit_limit" not in f.errors and balance < -credit_limit:
        f.add("balance", "must be >= -credit_limit")
    f.check()
    try:
        customer = Customer.objects.get(pk=customer_id)
    except Customer.DoesNotExist:
        raise ApiError(
            422,
            "unknown_reference",
            f"customer {customer_id} does not exist",
            {"customer": ["unknown customer"]},
        ) from None
    try:
        with transaction.atomic():
            account = Account.objects.create(
                customer=customer, currency=currency, balance=balance, credit_limit=credit_limit
            )
    except IntegrityError:
        raise ApiError(
            409, "conflict", f"customer {customer.pk} already has a {currency} account"
        ) from None
    return json_response(render_account(account), status=201)


@api_view(["GET"])
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        account = Account.objects.get(pk=pk)
    except Account.DoesNotExist:
        raise not_found(f"account {pk}") from None
    return json_response(render_account(account))


@api_view(["GET"])
def instruments(request: HttpRequest) -> HttpResponse:
    """List instruments (``?active=true|false``), ordered by symbol."""
    qs = Instrument.objects.all()
    active = request.GET.get("active")
    if active is not None:
        if active not in ("true", "false"):
            raise ValidationError({"active": ["must be true or false"]})
        qs = qs.filter(active=active == "true")
    return paginate(request, qs, render_instrument)


@api_view(["GET"])
def instrument_detail(request: HttpRequest, symbol: str) -> HttpResponse:
    try:
        instrument = Instrument.objects.get(symbol=symbol)
    except Instrument.DoesNotExist:
        raise not_found(f"instrument {symbol}") from None
    return json_response(render_instrument(instrument))


@api_view(["GET"])
def holidays(request: HttpRequest) -> HttpResponse:
    """Non-business days, so clients can check settlement dates themselves."""
    return paginate(request, Holiday.objects.all(), render_holiday)


@api_view(["GET", "POST"])
@idempotent
def quotes(request: HttpRequest) -> HttpResponse:
    """List (``?account=``) or request a priced quote (calls the supplier)."""
    if request.method == "GET":
        qs = Quote.objects.select_related("instrument")
        if (account_id := _id_filter(request, "account")) is not None:
            qs = qs.filter(account_id=account_id)
        return paginate(request, qs, render_quote)
    account, instrument, side, quantity = _trade_fields(parse_json_object(request))
    quote = services.create_quote(
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        supplier_url=supplier_base_url(request),
    )
    return json_response(render_quote(quote), status=201)


@api_view(["GET"])
def quote_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        quote = Quote.objects.select_related("instrument").get(pk=pk)
    except Quote.DoesNotExist:
        raise not_found(f"quote {pk}") from None
    return json_response(render_quote(quote))


def _orders_qs() -> Any:
    return Order.objects.select_related("instrument", "quote", "quote__instrument")


@api_view(["GET", "POST"])
@idempotent
def orders(request: HttpRequest) -> HttpResponse:
    """List (``?account=&state=``) or create a draft order."""
    if request.method == "GET":
        qs = _orders_qs()
        if (account_id := _id_filter(request, "account")) is not None:
            qs = qs.filter(account_id=account_id)
        if (state := request.GET.get("state")) is not None:
            if state not in OrderState.values:
                raise ValidationError(
                    {"state": [f"must be one of: {', '.join(OrderState.values)}"]}
                )
            qs = qs.filter(state=state)
        return paginate(request, qs, render_order)
    account, instrument, side, quantity = _trade_fields(parse_json_object(request))
    if not instrument.active:
        raise ApiError(
            422, "instrument_inactive", f"instrument {instrument.symbol} is not tradable"
        )
    order = Order.objects.create(
        account=account, instrument=instrument, side=side, quantity=quantity
    )
    return json_response(render_order(_orders_qs().get(pk=order.pk)), status=201)


@api_view(["GET"])
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        order = _orders_qs().get(pk=pk)
    except Order.DoesNotExist:
        raise not_found(f"order {pk}") from None
    return json_response(render_order(order))


@api_view(["POST"])
@idempotent
def order_transition(request: HttpRequest, pk: str, action: str) -> HttpResponse:
    """POST /api/orders/<id>/<quote|confirm|settle|cancel>; a wrong state is a 409."""
    order_id = int(pk)
    if action == "quote":
        services.quote_order(order_id, supplier_base_url(request))
    elif action == "confirm":
        services.confirm_order(order_id)
    elif action == "settle":
        services.settle_order(order_id)
    elif action == "cancel":
        services.cancel_order(order_id)
    else:  # pragma: no cover - the URL pattern only lets the four actions through
        raise not_found(f"action {action}")
    return json_response(render_order(_orders_qs().get(pk=order_id)))


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any unknown URL under /api/ is a JSON 404, never Django's HTML page."""
    raise ApiError(404, "not_found", f"no API endpoint at {request.path}")
