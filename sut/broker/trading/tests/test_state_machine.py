"""The order state machine and the money-moving services behind it."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from trading import services
from trading.api import ApiError
from trading.models import Account, Holiday, InvalidTransition, Order, OrderState

from .support import FakeSupplier, make_account, make_instrument, make_order


class TransitionTableTests(SimpleTestCase):
    def order(self, state: str) -> Order:
        return Order(state=state)

    def test_happy_path(self) -> None:
        self.assertEqual(self.order("draft").target_state("quote"), "quoted")
        self.assertEqual(self.order("quoted").target_state("confirm"), "confirmed")
        self.assertEqual(self.order("confirmed").target_state("settle"), "settled")

    def test_requote_allowed(self) -> None:
        self.assertEqual(self.order("quoted").target_state("quote"), "quoted")

    def test_cancel_from_open_states(self) -> None:
        for state in ("draft", "quoted", "confirmed"):
            with self.subTest(state=state):
                self.assertEqual(self.order(state).target_state("cancel"), "cancelled")

    def test_terminal_states_reject_everything(self) -> None:
        for state in ("settled", "cancelled"):
            for action in Order.TRANSITIONS:
                with self.subTest(state=state, action=action), self.assertRaises(InvalidTransition):
                    self.order(state).target_state(action)

    def test_skipping_steps_rejected(self) -> None:
        for state, action in [("draft", "confirm"), ("draft", "settle"), ("quoted", "settle")]:
            with self.subTest(state=state, action=action), self.assertRaises(InvalidTransition):
                self.order(state).target_state(action)


class _WithSupplier:
    """Mixin: a FakeSupplier for the class, with BROKER_SUPPLIER_URL pointing at it."""

    supplier: FakeSupplier

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.supplier = FakeSupplier().start()
        cls.addClassCleanup(cls.supplier.stop)  # type: ignore[attr-defined]


class ServiceTests(_WithSupplier, TestCase):
    def setUp(self) -> None:
        self.supplier.mode = "ok"
        self.supplier.mid = Decimal("100")
        self.account = make_account(balance="10000", credit_limit="0")
        self.instrument = make_instrument(spread_bps="20")
        self.order = make_order(self.account, self.instrument, quantity="10")

    def run_to(self, state: str) -> Order:
        steps = {"quoted": ["quote"], "confirmed": ["quote", "confirm"]}[state]
        for step in steps:
            if step == "quote":
                services.quote_order(self.order.pk, self.supplier.url)
            else:
                services.confirm_order(self.order.pk)
        return Order.objects.get(pk=self.order.pk)

    def test_quote_attaches_priced_quote(self) -> None:
        order = self.run_to("quoted")
        assert order.quote is not None
        # mid 100, half of 20 bps above mid for a buy = 100.10; 10 units = 1001.00
        self.assertEqual(order.quote.unit_price, Decimal("100.1"))
        self.assertEqual(order.quote.notional, Decimal("1001.00"))
        self.assertEqual(order.quote.commission, Decimal("5.00"))  # standard minimum
        self.assertEqual(order.quote.total, Decimal("1006.00"))
        self.assertEqual(self.supplier.requests[-1], "/supplier/prices/ACME?currency=USD")

    def test_settle_buy_debits_total_and_sets_t_plus_2(self) -> None:
        self.run_to("confirmed")
        Order.objects.filter(pk=self.order.pk).update(trade_date=date(2025, 1, 9))  # Thursday
        order = services.settle_order(self.order.pk)
        self.assertEqual(order.state, OrderState.SETTLED)
        self.assertEqual(order.settlement_date, date(2025, 1, 13))  # skips the weekend
        self.assertEqual(Account.objects.get(pk=self.account.pk).balance, Decimal("8994.00"))

    def test_settlement_skips_holidays(self) -> None:
        self.run_to("confirmed")
        Order.objects.filter(pk=self.order.pk).update(trade_date=date(2025, 12, 23))
        Holiday.objects.create(date=date(2025, 12, 25), name="Christmas")
        Holiday.objects.create(date=date(2025, 12, 26), name="Boxing Day")
        order = services.settle_order(self.order.pk)
        self.assertEqual(order.settlement_date, date(2025, 12, 29))

    def test_settle_sell_credits_total(self) -> None:
        sell = make_order(self.account, self.instrument, side="sell", quantity="10")
        services.quote_order(sell.pk, self.supplier.url)
        services.confirm_order(sell.pk)
        services.settle_order(sell.pk)
        # sell at 99.90 * 10 = 999.00 minus 5.00 commission
        self.assertEqual(Account.objects.get(pk=self.account.pk).balance, Decimal("10994.00"))

    def test_insufficient_funds_is_409_and_moves_nothing(self) -> None:
        Account.objects.filter(pk=self.account.pk).update(balance=Decimal("1000"))
        self.run_to("confirmed")
        with self.assertRaises(ApiError) as ctx:
            services.settle_order(self.order.pk)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (409, "insufficient_funds"))
        self.assertEqual(Account.objects.get(pk=self.account.pk).balance, Decimal("1000"))
        self.assertEqual(Order.objects.get(pk=self.order.pk).state, "confirmed")

    def test_confirm_expired_quote_is_409(self) -> None:
        order = self.run_to("quoted")
        assert order.quote is not None
        type(order.quote).objects.filter(pk=order.quote.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        with self.assertRaises(ApiError) as ctx:
            services.confirm_order(self.order.pk)
        self.assertEqual(ctx.exception.code, "quote_expired")

    def test_requote_replaces_expired_quote(self) -> None:
        first = self.run_to("quoted").quote
        assert first is not None
        self.supplier.mid = Decimal("200")
        order = services.quote_order(self.order.pk, self.supplier.url)
        assert order.quote is not None
        self.assertNotEqual(order.quote.pk, first.pk)
        self.assertEqual(order.quote.mid, Decimal("200"))

    def test_cancel_confirmed_moves_no_money(self) -> None:
        self.run_to("confirmed")
        order = services.cancel_order(self.order.pk)
        self.assertEqual(order.state, "cancelled")
        self.assertEqual(Account.objects.get(pk=self.account.pk).balance, Decimal("10000"))

    @override_settings(BROKER_QUOTE_TTL=42)
    def test_quote_ttl_from_settings(self) -> None:
        quote = self.run_to("quoted").quote
        assert quote is not None
        self.assertAlmostEqual((quote.expires_at - quote.created_at).total_seconds(), 42, delta=1)


class ConcurrentSettlementTests(_WithSupplier, TransactionTestCase):
    """Two settlements of one order race; select_for_update lets exactly one win."""

    def test_only_one_settlement_debits(self) -> None:
        account = make_account(balance="10000")
        order = make_order(account, make_instrument(), quantity="10")
        services.quote_order(order.pk, self.supplier.url)
        services.confirm_order(order.pk)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def settle() -> None:
            try:
                barrier.wait()
                services.settle_order(order.pk)
                outcomes.append("settled")
            except ApiError as exc:
                outcomes.append(exc.code)
            finally:
                connection.close()

        threads = [threading.Thread(target=settle) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(sorted(outcomes), ["invalid_transition", "settled"])
        quote = Order.objects.get(pk=order.pk).quote
        assert quote is not None
        self.assertEqual(Account.objects.get(pk=account.pk).balance, Decimal("10000") - quote.total)
