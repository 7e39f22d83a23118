"""Secrets of an inventory on the control node: one 0600 JSON file, outside any report.

Kept per inventory (not per run) so that a warm redeploy finds the same settings on the
hosts and transfers nothing. Values never go to the run record, logs or command lines;
:func:`redact` scrubs them from any text that is about to be stored.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

from orchestrator.exceptions import InfrastructureError
from orchestrator.files import atomic_write

KEYS = ("db_password", "secret_key")


def load_or_create(path: Path) -> dict[str, str]:
    """The inventory's secrets, created (random) on first use; file mode 0600."""
    values: dict[str, str] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                values = {k: v for k, v in loaded.items() if isinstance(v, str)}
        except (OSError, ValueError):
            values = {}
    changed = False
    for key in KEYS:
        if not values.get(key):
            # URL-safe characters only: they need no quoting in SQL, shell or URLs.
            values[key] = secrets.token_urlsafe(32 if key == "secret_key" else 24)
            changed = True
    if changed:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, json.dumps(values).encode(), mode=0o600)
        except OSError as err:
            raise InfrastructureError(f"cannot write the secrets file {path}: {err}") from err
    os.chmod(path, 0o600)
    return values


def redact(text: str, secret_values: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``[redacted]``."""
    for value in secret_values:
        if value and len(value) >= 6:
            text = text.replace(value, "[redacted]")
    return text


def _xml_forms(value: str) -> set[str]:
    """A value as XML writers may escape it: ``&`` and ``<`` always, ``>`` usually, and
    each kind of quote raw or as any of its entities (attributes differ from text)."""
    if not any(c in value for c in "&<>\"'"):
        return set()
    forms = set()
    for gt in (">", "&gt;"):
        base = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", gt)
        for dq in ('"', "&quot;", "&#34;"):
            for sq in ("'", "&apos;", "&#x27;", "&#39;"):
                forms.add(base.replace('"', dq).replace("'", sq))
    return forms


def encoded_forms(secret_values: Iterable[str]) -> list[str]:
    """Each secret as it may appear in JSON, in a URL (escaped, percent-encoded) or in
    XML (a JUnit file: ``&amp;``, ``&lt;``, quotes as entities), the longest first: text
    that quotes a secret in another encoding is scrubbed too."""
    forms: set[str] = set()
    for value in secret_values:
        if not value:
            continue
        forms.update(
            {
                value,
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
                quote(value, safe=""),
                quote_plus(value),
                *_xml_forms(value),
            }
        )
    return sorted(forms, key=len, reverse=True)
