"""Formatting helpers shared by the text and markdown views.

Secrets are hidden as redaction.py defines them: each helper takes the Redactor of the object
being shown (AccountSecrets(address)); the default knows the built-in credential names only.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from ... import canonical
from ...money import format_decimal, format_dollars
from ...redaction import NOTHING_MARKED, SENSITIVE, Redactor

KNOWN_AFTER_APPLY = "(known after apply)"
_PLACEHOLDER_VALUE = re.compile(r'"\$\{[^}]+\}"')
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def redact(value: Any, field: str = "", redactor: Redactor = NOTHING_MARKED) -> Any:
    """Hide the values of secret fields (billing provider credentials), at any depth."""
    return redactor.value(value, field)


def redact_at(value: Any, path: str = "", redactor: Redactor = NOTHING_MARKED) -> Any:
    """Redact a value found at a field path (a field change's before or after)."""
    return redactor.at(value, path)


def show_value(value: Any, path: str = "", redactor: Redactor = NOTHING_MARKED) -> str:
    if value is None:
        return "null"
    text = canonical.dumps(redactor.at(value, path), sort_keys=False)
    return _PLACEHOLDER_VALUE.sub(KNOWN_AFTER_APPLY, text)


def show_body(body: Any, redactor: Redactor = NOTHING_MARKED) -> str:
    """The body as indented JSON, secrets redacted, placeholders as (known after apply).

    Written by hand rather than json.dumps(indent=2), whose indenting encoder is pure Python and
    made rendering a 20,000-object plan take longer than applying it; the output is the same."""
    parts: list[str] = []
    _write_indented(body, "", "\n", parts, redactor)
    text = "".join(parts)
    if "${" in text:
        text = _PLACEHOLDER_VALUE.sub(f'"{KNOWN_AFTER_APPLY}"', text)
    return text


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _write_indented(value: Any, field: str, newline: str, parts: list[str], redactor: Redactor) -> None:
    if field and value is not None and not isinstance(value, bool) and redactor.is_secret(field):
        parts.append(_encode_string(SENSITIVE))
    elif isinstance(value, (dict, list)) and not value:
        parts.append("{}" if isinstance(value, dict) else "[]")
    elif isinstance(value, dict):
        entries = ((_encode_string(str(key)) + ": ", key, item) for key, item in value.items())
        _write_container("{", "}", entries, newline, parts, redactor)
    elif isinstance(value, list):
        _write_container("[", "]", (("", "", item) for item in value), newline, parts, redactor)
    elif isinstance(value, str):
        parts.append(_encode_string(value))
    elif isinstance(value, Decimal):
        parts.append(format_decimal(value))
    else:
        parts.append(canonical.dumps(value))


def _write_container(opening: str, closing: str, entries, newline: str, parts: list[str], redactor: Redactor) -> None:
    """Entries (prefix, field name, value), one per line, one level deeper than `newline`."""
    inner = newline + "  "
    parts.append(opening)
    separator = inner
    for prefix, field, item in entries:
        parts.append(separator + prefix)
        separator = "," + inner
        _write_indented(item, field, inner, parts, redactor)
    parts.append(newline + closing)


def show_path(path: str) -> str:
    """A request path with ids not known yet shown as (known after apply)."""
    return _PLACEHOLDER.sub(KNOWN_AFTER_APPLY, path)


def object_action(ops) -> Any:
    """The one action an object's operations add up to, for its symbol: replace, archive or
    create if any operation is one, else update."""
    from ..operations import Action

    actions = {op.action for op in ops}
    for action in (Action.REPLACE, Action.ARCHIVE, Action.CREATE):
        if action in actions:
            return action
    return Action.UPDATE


def summary_line(plan) -> str:
    s = plan.summary()
    moved = f", {len(plan.moves)} to move" if plan.moves else ""
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['archive']} to archive{moved}.")



# --- field changes -------------------------------------------------------------------------
# Changes the API makes another way than an update carry a note (operations.Change.note); each
# view shows it after the change, in its own markup.
NOTES = {"replace": "forces replacement: removed and added again", "archive": "archived", "remove": "removed"}
GONE = frozenset({"archive", "remove"})  # shown as the path alone: what goes is named by its key


def change_mark(change) -> str:
    """+ added, - archived/removed/cleared, ~ changed."""
    if change.note in GONE or (change.after is None and change.before is not None):
        return "-"
    return "+" if change.before is None else "~"


# --- invoice impact (plan --usage) -----------------------------------------------------------
# The rows shown per customer after its total, in order: (field of the impact row, label).
IMPACT_FIGURES = (("subtotal", "subtotal"), ("drawdown", "commit/credit drawdown"))


def impact_lines(row: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """A customer's impact as (label, before, after, delta) in dollars; only the total has a delta."""
    lines = [("total", format_dollars(row["before"]), format_dollars(row["after"]), signed_dollars(row["delta"]))]
    for field, label in IMPACT_FIGURES:
        if field in row:
            lines.append((label, format_dollars(row[field]["before"]), format_dollars(row[field]["after"]), ""))
    for balance in row.get("balances", []):
        lines.append((f"balance {balance['balance']}", format_dollars(balance["before"]),
                      format_dollars(balance["after"]), ""))
    return lines


def signed_dollars(cents: Any) -> str:
    return ("+" if cents > 0 else "") + format_dollars(cents)
