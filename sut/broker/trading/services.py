"""Business operations: pricing quotes and moving orders through their life cycle.

The arithmetic is brokercalc's (a plain-Python package with its own unit
tests); this module only wires it to the database and the upstream supplier.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from brokercalc import STANDARD_SCHEDULE, CalculationError, price_quote, settlement_date
from brokercalc import Side as CalcSide
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .api import ApiError
from .models import Account, Holiday, Instrument, InvalidTransition, Order, Quote, Side
from .upstream import SupplierClient

log = logging.getLogger(__name__)


def calc_side(side: str) -> CalcSide:
    """Map the stored side to brokercalc's enum."""
    return CalcSide.BUY if side == Side.BUY else CalcSide.SELL


def create_quote(
    *, account: Account, instrument: Instrument, side: str, quantity: Decimal, supplier_url: str
) -> Quote:
    """Price ``quantity`` of ``instrument`` for ``account`` and store the quote.

    The mid price comes from the supplier in the account's currency, so the
    quote's amounts are what the account will be debited or credited.
    """
    if not instrument.active:
        raise ApiError(
            422, "instrument_inactive", f"instrument {instrument.symbol} is not tradable"
        )
    mid = SupplierClient(supplier_url).mid_price(instrument.symbol, account.currency)
    try:
        breakdown = price_quote(
            side=calc_side(side),
            quantity=quantity,
            mid=mid,
            spread_bps=instrument.spread_bps,
            currency=account.currency,
            schedule=STANDARD_SCHEDULE,
            tax_rate=instrument.tax_rate,
        )
    except CalculationError as exc:
        raise ApiError(422, "pricing_error", f"cannot price this quote: {exc}") from exc
    return Quote.objects.create(
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        currency=account.currency,
        mid=mid,
        unit_price=breakdown.unit_price,
        notional=breakdown.notional,
        commission=breakdown.commission,
        tax=breakdown.tax,
        total=breakdown.total,
        expires_at=timezone.now() + timedelta(seconds=settings.BROKER_QUOTE_TTL),
    )


def _locked_order(order_id: int) -> Order:
    """The order row, locked until the surrounding transaction ends."""
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except Order.DoesNotExist:
        raise ApiError(404, "not_found", f"order {order_id} not found") from None


def _invalid(order: Order, action: str) -> ApiError:
    return ApiError(
        409,
        "invalid_transition",
        f"cannot {action} order {order.pk} in state {order.state!r}",
    )


def _check(order: Order, action: str) -> str:
    """The state ``action`` leads to, or a 409 ``invalid_transition``."""
    try:
        return order.target_state(action)
    except InvalidTransition:
        raise _invalid(order, action) from None


def quote_order(order_id: int, supplier_url: str) -> Order:
    """draft/quoted -> quoted: price the order and attach a fresh quote.

    The supplier is called before the row lock is taken so a slow upstream
    never holds a database lock; the state is re-checked under the lock.
    """
    try:
        order = Order.objects.select_related("account", "instrument").get(pk=order_id)
    except Order.DoesNotExist:
        raise ApiError(404, "not_found", f"order {order_id} not found") from None
    _check(order, "quote")
    with transaction.atomic():
        quote = create_quote(
            account=order.account,
            instrument=order.instrument,
            side=order.side,
            quantity=order.quantity,
            supplier_url=supplier_url,
        )
        locked = _locked_order(order_id)
        locked.state = _check(locked, "quote")
        locked.quote = quote
        locked.save(update_fields=["state", "quote", "updated_at"])
    return locked


def confirm_order(order_id: int) -> Order:
    """quoted -> confirmed, only while the quote is still valid; sets the trade date."""
    with transaction.atomic():
        order = _locked_order(order_id)
        target = _check(order, "confirm")
        assert order.quote is not None
        if order.quote.expires_at <= timezone.now():
            raise ApiError(
                409,
                "quote_expired",
                f"quote {order.quote.pk} expired at {order.quote.expires_at.isoformat()}; "
                "re-quote the order",
            )
        order.state = target
        order.trade_date = timezone.now().date()
        order.save(update_fields=["state", "trade_date", "updated_at"])
    return order


def settle_order(order_id: int) -> Order:
    """confirmed -> settled: move the money and fix the settlement date, atomically.

    Order and account rows are locked (select_for_update) so two concurrent
    settlements can neither settle twice nor lose a balance update. A buy
    debits the quote total, a sell credits it; a debit beyond the credit
    limit is a 409 (the database CheckConstraint backs this up).
    """
    with transaction.atomic():
        order = _locked_order(order_id)
        target = _check(order, "settle")
        quote = order.quote
        assert quote is not None and order.trade_date is not None
        account = Account.objects.select_for_update().get(pk=order.account_id)
        delta = -quote.total if order.side == Side.BUY else quote.total
        new_balance = account.balance + delta
        if new_balance < -account.credit_limit:
            raise ApiError(
                409,
                "insufficient_funds",
                f"account {account.pk} balance {account.balance} cannot cover {quote.total}",
            )
        account.balance = new_balance
        account.save(update_fields=["balance"])
        holidays = list(Holiday.objects.values_list("date", flat=True))
        order.settlement_date = settlement_date(
            order.trade_date, lag=settings.BROKER_SETTLEMENT_LAG, holidays=holidays
        )
        order.state = target
        order.save(update_fields=["state", "settlement_date", "updated_at"])
    log.info("order %s settled: account %s now %s", order.pk, account.pk, account.balance)
    return order


def cancel_order(order_id: int) -> Order:
    """draft/quoted/confirmed -> cancelled; no money moves."""
    with transaction.atomic():
        order = _locked_order(order_id)
        order.state = _check(order, "cancel")
        order.save(update_fields=["state", "updated_at"])
    return order
