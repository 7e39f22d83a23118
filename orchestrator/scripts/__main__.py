"""``python -m orchestrator.scripts``: lint the rendered remote scripts (see check.py)."""

from __future__ import annotations

from orchestrator.scripts.check import main

raise SystemExit(main())
