"""Formatting helpers shared by the text and markdown views.

Secrets: a value under a field named like a credential (key, secret, token, password,
credential...) is shown as "(sensitive)" in the text and markdown views, in request bodies and
in field changes alike. The fields of the manifest language that are named `*key*` but are not
secrets (an item's `key`, `group_key`, `aggregation_key`...) are listed in NOT_SECRET. The plan
file (`--out`, `--format json`) keeps the real values: it is what `apply` sends.
"""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from typing import Any

from ... import canonical
from ...money import format_decimal

KNOWN_AFTER_APPLY = "(known after apply)"
SENSITIVE = "(sensitive)"
_SECRET_PART = re.compile(r"secret|token|passw|passphrase|credential|private|signature|cookie", re.IGNORECASE)
_WORDS = re.compile(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])")
# Fields of the manifests and of the API bodies named like a key that are identifiers, not secrets.
NOT_SECRET = frozenset({
    "key", "keys", "group_key", "group_keys", "aggregation_key", "pricing_group_key", "presentation_group_key",
    "seat_group_key", "uniqueness_key", "idempotency_key", "sort_key",
})
_PLACEHOLDER_VALUE = re.compile(r'"\$\{[^}]+\}"')
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")
_PATH_FIELD = re.compile(r"\[[^\]]*\]")


def is_secret_field(name: Any) -> bool:
    """Whether a field of this name holds a credential (api_key, client_secret, accessToken...)."""
    if not isinstance(name, str) or not name or name in NOT_SECRET:
        return False
    return _is_secret_name(name)


@functools.lru_cache(maxsize=4096)  # a plan names the same few hundred fields over and over
def _is_secret_name(name: str) -> bool:
    if _SECRET_PART.search(name):
        return True
    words = [w.lower() for w in _WORDS.split(name) if w]
    return bool(words) and (any(w in ("key", "keys") for w in words) or words[-1].endswith("key")
                            or words[-1].endswith("keys"))


def redact(value: Any, field: str = "") -> Any:
    """Hide the values of fields named like secrets (billing provider credentials), at any depth."""
    if value is None:
        return None
    if field and is_secret_field(field):
        return SENSITIVE
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def path_is_secret(path: str) -> bool:
    """`custom_fields.api_token`, `...configuration.credentials.user`: inside a secret field."""
    if not path:
        return False
    return any(is_secret_field(part) for part in _PATH_FIELD.sub("", path).split(".") if part)


def redact_at(value: Any, path: str = "") -> Any:
    """Redact a value found at a field path (a field change's before or after)."""
    if value is not None and path_is_secret(path):
        return SENSITIVE
    return redact(value)


def show_value(value: Any, path: str = "") -> str:
    if value is None:
        return "null"
    text = canonical.dumps(redact_at(value, path), sort_keys=False)
    return _PLACEHOLDER_VALUE.sub(KNOWN_AFTER_APPLY, text)


def show_body(body: Any) -> str:
    """The body as indented JSON, secrets redacted, placeholders as (known after apply).

    Written by hand rather than json.dumps(indent=2), whose indenting encoder is pure Python and
    made rendering a 20,000-object plan take longer than applying it; the output is the same."""
    parts: list[str] = []
    _write_indented(body, "", "\n", parts)
    text = "".join(parts)
    if "${" in text:
        text = _PLACEHOLDER_VALUE.sub(f'"{KNOWN_AFTER_APPLY}"', text)
    return text


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _write_indented(value: Any, field: str, newline: str, parts: list[str]) -> None:
    if field and value is not None and is_secret_field(field):
        parts.append(_encode_string(SENSITIVE))
    elif isinstance(value, (dict, list)) and not value:
        parts.append("{}" if isinstance(value, dict) else "[]")
    elif isinstance(value, dict):
        entries = ((_encode_string(str(key)) + ": ", key, item) for key, item in value.items())
        _write_container("{", "}", entries, newline, parts)
    elif isinstance(value, list):
        _write_container("[", "]", (("", "", item) for item in value), newline, parts)
    elif isinstance(value, str):
        parts.append(_encode_string(value))
    elif isinstance(value, Decimal):
        parts.append(format_decimal(value))
    else:
        parts.append(canonical.dumps(value))


def _write_container(opening: str, closing: str, entries, newline: str, parts: list[str]) -> None:
    """Entries (prefix, field name, value), one per line, one level deeper than `newline`."""
    inner = newline + "  "
    parts.append(opening)
    separator = inner
    for prefix, field, item in entries:
        parts.append(separator + prefix)
        separator = "," + inner
        _write_indented(item, field, inner, parts)
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
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['archive']} to archive.")

