"""Database constraints: each invariant is enforced by MariaDB itself.

Each test writes a violating row through the ORM and expects IntegrityError
from the server; the atomic block keeps the test transaction usable.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.test import TestCase
from django.utils import timezone

from trading.models import Account, Customer, Holiday, IdempotencyKey, Instrument, Order, Quote

from .support import make_account, make_customer, make_instrument, make_order


class ConstraintTests(TestCase):
    def setUp(self) -> None:
        self.customer = make_customer()
        self.account = make_account(self.customer, balance="100", credit_limit="50")
        self.instrument = make_instrument()

    def assertViolates(self, fn) -> None:
        with self.assertRaises(IntegrityError), transaction.atomic():
            fn()

    def test_customer_email_unique(self) -> None:
        self.assertViolates(lambda: Customer.objects.create(name="Other", email="c@example.com"))

    def test_one_account_per_customer_and_currency(self) -> None:
        self.assertViolates(lambda: Account.objects.create(customer=self.customer, currency="USD"))

    def test_second_currency_account_is_fine(self) -> None:
        Account.objects.create(customer=self.customer, currency="EUR")
        self.assertEqual(self.customer.accounts.count(), 2)

    def test_balance_may_use_credit_limit(self) -> None:
        Account.objects.filter(pk=self.account.pk).update(balance=Decimal("-50"))
        self.account.refresh_from_db()
        self.assertEqual(self.account.balance, Decimal("-50"))

    def test_balance_below_credit_limit_rejected(self) -> None:
        self.assertViolates(
            lambda: Account.objects.filter(pk=self.account.pk).update(balance=Decimal("-50.01"))
        )

    def test_negative_credit_limit_rejected(self) -> None:
        self.assertViolates(
            lambda: Account.objects.filter(pk=self.account.pk).update(credit_limit=Decimal("-1"))
        )

    def test_instrument_symbol_unique(self) -> None:
        self.assertViolates(lambda: make_instrument(symbol="ACME"))

    def test_instrument_negative_spread_rejected(self) -> None:
        self.assertViolates(lambda: make_instrument(symbol="NEG", spread_bps="-1"))

    def test_instrument_tax_rate_must_be_below_one(self) -> None:
        self.assertViolates(lambda: make_instrument(symbol="TAX", tax_rate="1"))

    def test_order_quantity_positive(self) -> None:
        self.assertViolates(lambda: make_order(self.account, self.instrument, quantity="0"))

    def test_order_side_checked_by_database(self) -> None:
        self.assertViolates(lambda: make_order(self.account, self.instrument, side="hold"))

    def test_order_state_checked_by_database(self) -> None:
        order = make_order(self.account, self.instrument)
        self.assertViolates(lambda: Order.objects.filter(pk=order.pk).update(state="lost"))

    def test_settled_order_requires_dates(self) -> None:
        order = make_order(self.account, self.instrument)
        self.assertViolates(lambda: Order.objects.filter(pk=order.pk).update(state="settled"))

    def test_settled_order_with_dates_accepted(self) -> None:
        order = make_order(self.account, self.instrument)
        Order.objects.filter(pk=order.pk).update(
            state="settled", trade_date=date(2025, 1, 6), settlement_date=date(2025, 1, 8)
        )
        order.refresh_from_db()
        self.assertEqual(order.state, "settled")

    def _quote(self, **overrides: object) -> Quote:
        values: dict[str, object] = {
            "account": self.account,
            "instrument": self.instrument,
            "side": "buy",
            "quantity": Decimal("1"),
            "currency": "USD",
            "mid": Decimal("10"),
            "unit_price": Decimal("10.01"),
            "notional": Decimal("10.01"),
            "commission": Decimal("5"),
            "tax": Decimal("0"),
            "total": Decimal("15.01"),
            "expires_at": timezone.now() + timedelta(minutes=5),
        }
        values.update(overrides)
        return Quote.objects.create(**values)

    def test_quote_negative_fee_rejected(self) -> None:
        self.assertViolates(lambda: self._quote(commission=Decimal("-1")))

    def test_quote_used_by_one_order_only(self) -> None:
        quote = self._quote()
        first = make_order(self.account, self.instrument)
        Order.objects.filter(pk=first.pk).update(quote=quote)
        other = make_order(self.account, self.instrument)
        self.assertViolates(lambda: Order.objects.filter(pk=other.pk).update(quote=quote))

    def test_idempotency_key_unique(self) -> None:
        fields = {"method": "POST", "path": "/api/x", "request_hash": "h", "status_code": 201}
        IdempotencyKey.objects.create(key="k1", response_body="{}", **fields)
        self.assertViolates(
            lambda: IdempotencyKey.objects.create(key="k1", response_body="{}", **fields)
        )

    def test_holiday_date_unique(self) -> None:
        Holiday.objects.create(date=date(2025, 12, 25), name="Christmas")
        self.assertViolates(lambda: Holiday.objects.create(date=date(2025, 12, 25), name="Dup"))

    def test_protected_delete_of_instrument_with_orders(self) -> None:
        from django.db.models import ProtectedError

        make_order(self.account, self.instrument)
        with self.assertRaises(ProtectedError):
            Instrument.objects.filter(pk=self.instrument.pk).delete()
