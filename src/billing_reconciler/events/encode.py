"""Column values of a stored event, written fast: ingest spends more time here than in SQLite.

`properties_text` gives the same text as `canonical.dumps` for flat properties (the usual case)
without its generic encoder; anything nested falls back to `canonical.dumps`. `timestamp_text`
gives the text SQLAlchemy's SQLite DateTime reads back, from the integer microseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..canonical import dumps
from ..money import format_decimal

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]  # ensure_ascii=False, as dumps
DAY = 86_400_000_000
_days: dict[int, str] = {}


def properties_text(properties: Mapping[str, Any]) -> str:
    parts = []
    for name in sorted(properties):
        value = properties[name]
        kind = type(value)
        if kind is str:
            text = _encode_str(value)
        elif kind is int:
            text = int.__repr__(value)
        elif kind is Decimal:
            text = format_decimal(value)
        elif value is None:
            text = "null"
        elif kind is bool:
            text = "true" if value else "false"
        else:
            return dumps(properties)
        if type(name) is not str:
            return dumps(properties)
        parts.append(f"{_encode_str(name)}:{text}")
    return "{" + ",".join(parts) + "}"


def timestamp_text(micros: int) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) of microseconds since the epoch."""
    day, rest = divmod(micros, DAY)
    date = _days.get(day)
    if date is None:
        date = _days[day] = datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%d ")
    seconds, us = divmod(rest, 1_000_000)
    return f"{date}{(_CLOCK or _clock())[seconds]}.{us:06d}"


_CLOCK: list[str] = []


def _clock() -> list[str]:
    """'HH:MM:SS' of every second of a day (86,400 short strings, built on first use)."""
    if not _CLOCK:
        _CLOCK.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))
    return _CLOCK
