"""Exception hierarchy shared by every ``brokercalc`` module.

Why a common base: the Django views that call into this package want to turn
*any* calculation problem (bad input, unknown currency, missing FX rate) into
an HTTP 400 with one ``except`` clause, without also swallowing genuine bugs
such as ``AttributeError``.  Every error raised on purpose by ``brokercalc``
therefore derives from :class:`CalculationError`, which is itself a
``ValueError`` so callers that only know the standard library still catch it.
"""

from __future__ import annotations

__all__ = ["CalculationError"]


class CalculationError(ValueError):
    """Base class for every deliberate error raised by ``brokercalc``."""
