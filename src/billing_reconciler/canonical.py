"""The canonical form of billing data: plain dicts/lists/str/bool/int/Decimal, no empties.

Everything that is compared (diff), hashed (digests) or stored goes through this form, so the same
meaning always has the same bytes: timestamps are UTC text with a Z, numbers are ints when whole
and normalised Decimals otherwise, enums are their values, and absent, null and empty are the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from .money import format_decimal, normalize
from .timeutil import format_timestamp


def canonicalize(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            c = canonicalize(v)
            if c is None or c == [] or c == {}:
                continue
            out[k] = c
        return out
    if isinstance(value, (list, tuple)):
        return [canonicalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return normalize(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return normalize(Decimal(repr(value)))
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Enum):
        return value.value
    return value


_DECIMAL_MARK = "\x00dec:"
_DECIMAL_RE = re.compile(r'"\\u0000dec:([-0-9.]+)"')


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Written as a bare JSON number below: never through float.
        return _DECIMAL_MARK + format_decimal(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = True) -> str:
    """JSON text with Decimals as exact JSON numbers."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(value, default=_encode_default, sort_keys=sort_keys, indent=indent,
                      separators=separators, ensure_ascii=False)
    if "\\u0000dec:" in text:
        text = _DECIMAL_RE.sub(r"\1", text)
    return text


def _parse_number(text: str) -> Any:
    return normalize(Decimal(text))


def loads(text: str) -> Any:
    """JSON text to the canonical form; non-integral numbers become Decimal, never float."""
    return json.loads(text, parse_float=_parse_number)


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(dumps(value).encode()).hexdigest()
