"""Packaging rules: stdlib only (no Django), and the public API is re-exported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import brokercalc

PACKAGE_DIR = Path(brokercalc.__file__).parent

CONTRACT_NAMES = {
    "CURRENCY_EXPONENTS",
    "UnknownCurrency",
    "minor_units",
    "quantize",
    "split_evenly",
    "RateTable",
    "MissingRate",
    "Tier",
    "FeeSchedule",
    "commission",
    "STANDARD_SCHEDULE",
    "transaction_tax",
    "add_business_days",
    "settlement_date",
    "instalment_schedule",
    "Side",
    "QuoteBreakdown",
    "price_quote",
    "CalculationError",
}


def test_contract_names_are_exported() -> None:
    assert set(brokercalc.__all__) >= CONTRACT_NAMES
    for name in brokercalc.__all__:
        assert hasattr(brokercalc, name), name


def test_only_standard_library_imports() -> None:
    allowed = set(sys.stdlib_module_names) | {"brokercalc"}
    for source in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{source.name} imports non-stdlib {root}"


def test_import_does_not_load_django() -> None:
    code = "import sys, brokercalc; sys.exit(1 if 'django' in sys.modules else 0)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE_DIR.parent, check=False, timeout=60
    )
    assert result.returncode == 0
