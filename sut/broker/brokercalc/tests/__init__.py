"""Unit tests for :mod:`brokercalc` (pure Python; no Django needed)."""
