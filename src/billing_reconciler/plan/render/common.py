"""Formatting helpers shared by the text and markdown views."""

from __future__ import annotations

import re
from typing import Any

from ... import canonical

KNOWN_AFTER_APPLY = "(known after apply)"
_SECRET_FIELD = re.compile(r"(key|secret|token|password)", re.IGNORECASE)
_PLACEHOLDER_VALUE = re.compile(r'"\$\{[^}]+\}"')


def redact(value: Any, field: str = "") -> Any:
    """Hide values of fields named like secrets (billing provider credentials)."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, field) for v in value]
    if field and _SECRET_FIELD.search(field) and field != "key" and isinstance(value, str):
        return "(sensitive)"
    return value


def show_value(value: Any) -> str:
    if value is None:
        return "null"
    text = canonical.dumps(redact(value), sort_keys=False)
    return _PLACEHOLDER_VALUE.sub(KNOWN_AFTER_APPLY, text)


def show_body(body: Any) -> str:
    text = canonical.dumps(redact(body), indent=2, sort_keys=False)
    return _PLACEHOLDER_VALUE.sub(f'"{KNOWN_AFTER_APPLY}"', text)


def summary_line(plan) -> str:
    s = plan.summary()
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['archive']} to archive.")
