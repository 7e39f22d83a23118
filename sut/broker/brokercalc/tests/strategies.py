"""Shared hypothesis strategies and settings for the brokercalc tests.

Kept small and fast on purpose: the whole suite must run in a few seconds
inside the readiness orchestrator, so every property uses ``FAST``.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Modest example count; no deadline (lab hosts have noisy timing); derandomized so a
#: readiness run is reproducible (a red run stays red on re-run); no example database
#: so nothing is written into the deployed tree.
FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY", "KWD", "SEK")

currencies = st.sampled_from(CURRENCIES)


def amounts(
    min_value: str = "-1000000", max_value: str = "1000000", places: int = 4
) -> st.SearchStrategy[Decimal]:
    """Finite Decimals with up to ``places`` decimals (finer than any currency)."""
    return st.decimals(
        min_value=Decimal(min_value),
        max_value=Decimal(max_value),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


def non_negative(max_value: str = "10000000", places: int = 2) -> st.SearchStrategy[Decimal]:
    """Non-negative Decimals, e.g. notionals."""
    return amounts("0", max_value, places)
