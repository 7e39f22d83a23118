# Django reads Meta.ordering/constraints as plain class attributes, so RUF012 does not apply.
# ruff: noqa: RUF012
"""Relational model of the broker.

Invariants that matter for money are enforced by the database itself
(CheckConstraint / UniqueConstraint), not only in Python, so the REST layer
cannot corrupt data even if a view forgets a check. The unit tests prove that
by violating each constraint with raw ORM writes and expecting IntegrityError.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

AMOUNT = {"max_digits": 20, "decimal_places": 4}
QUANTITY = {"max_digits": 18, "decimal_places": 4}
# brokercalc keeps execution prices to 6 places, finer than any currency.
PRICE = {"max_digits": 24, "decimal_places": 6}


class Side(models.TextChoices):
    """Direction of a trade, as seen by the customer."""

    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class Customer(models.Model):
    """A person or firm that owns accounts."""

    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Account(models.Model):
    """A cash account in one currency; trades settle against its balance."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(**AMOUNT, default=Decimal("0"))
    credit_limit = models.DecimalField(**AMOUNT, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "currency"], name="account_one_per_customer_currency"
            ),
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="account_credit_limit_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(balance__gte=-F("credit_limit")), name="account_balance_within_credit"
            ),
        ]

    def __str__(self) -> str:
        return f"account {self.pk} ({self.currency})"


class Instrument(models.Model):
    """A tradable security; pricing parameters live here, the mid price upstream."""

    symbol = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    spread_bps = models.DecimalField(max_digits=8, decimal_places=2)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=5, default=Decimal("0"))
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                # brokercalc cannot price a spread of 20 000 bps (sell price 0) or more.
                condition=Q(spread_bps__gte=0) & Q(spread_bps__lt=20000),
                name="instrument_spread_range",
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0) & Q(tax_rate__lt=1), name="instrument_tax_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class Holiday(models.Model):
    """A non-business day that settlement dates must skip."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class Quote(models.Model):
    """A firm price for one account/instrument/side/quantity, valid until expires_at.

    Amounts are in the account's currency, computed by brokercalc from the
    supplier's mid price.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="quotes")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="quotes")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QUANTITY)
    currency = models.CharField(max_length=3)
    mid = models.DecimalField(**PRICE)
    unit_price = models.DecimalField(**PRICE)
    notional = models.DecimalField(**AMOUNT)
    commission = models.DecimalField(**AMOUNT)
    tax = models.DecimalField(**AMOUNT)
    total = models.DecimalField(**AMOUNT)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="quote_quantity_positive"),
            models.CheckConstraint(condition=Q(side__in=["buy", "sell"]), name="quote_side_valid"),
            models.CheckConstraint(
                condition=Q(commission__gte=0) & Q(tax__gte=0), name="quote_fees_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"quote {self.pk}"


class OrderState(models.TextChoices):
    """States of the order life cycle."""

    DRAFT = "draft", "Draft"
    QUOTED = "quoted", "Quoted"
    CONFIRMED = "confirmed", "Confirmed"
    SETTLED = "settled", "Settled"
    CANCELLED = "cancelled", "Cancelled"


class InvalidTransition(Exception):
    """Raised when an order is asked to move along an edge the machine lacks."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} an order in state {state!r}")
        self.action = action
        self.state = state


class Order(models.Model):
    """An order moving draft -> quoted -> confirmed -> settled, or cancelled.

    ``TRANSITIONS`` is the whole state machine: action -> (allowed source
    states, target state). Re-quoting a quoted order is allowed so an expired
    quote can be refreshed; everything else not listed is a 409.
    """

    TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
        "quote": (frozenset({OrderState.DRAFT, OrderState.QUOTED}), OrderState.QUOTED),
        "confirm": (frozenset({OrderState.QUOTED}), OrderState.CONFIRMED),
        "settle": (frozenset({OrderState.CONFIRMED}), OrderState.SETTLED),
        "cancel": (
            frozenset({OrderState.DRAFT, OrderState.QUOTED, OrderState.CONFIRMED}),
            OrderState.CANCELLED,
        ),
    }

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QUANTITY)
    state = models.CharField(max_length=10, choices=OrderState.choices, default=OrderState.DRAFT)
    quote = models.OneToOneField(
        Quote, on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    trade_date = models.DateField(null=True, blank=True)
    settlement_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(side__in=["buy", "sell"]), name="order_side_valid"),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in OrderState]), name="order_state_valid"
            ),
            # A settled order must carry its dates; the DB refuses anything else.
            models.CheckConstraint(
                condition=~Q(state=OrderState.SETTLED)
                | (Q(trade_date__isnull=False) & Q(settlement_date__isnull=False)),
                name="order_settled_has_dates",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.state})"

    def target_state(self, action: str) -> str:
        """Return the state ``action`` leads to, or raise InvalidTransition."""
        sources, target = self.TRANSITIONS[action]
        if self.state not in sources:
            raise InvalidTransition(action, self.state)
        return target


class IdempotencyKey(models.Model):
    """The stored response of a POST made with an ``Idempotency-Key`` header.

    A replay with the same key and the same request returns this response
    instead of acting twice; the same key with a different request is a 422.
    """

    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return self.key
