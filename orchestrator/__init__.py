"""readiness: deploy a Django application onto one or several hosts and prove it is ready.

The package is flat on purpose (as in invoke and fabric): one noun-named module per
concept. ``tasks.py`` at the repository root is the only place that turns errors into
exit codes.
"""

from __future__ import annotations

__version__ = "0.1.0"
