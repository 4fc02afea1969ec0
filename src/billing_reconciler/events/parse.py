"""Parse usage-event files: JSON Lines or CSV, one event per line.

Each event: {transaction_id, customer_id, event_type, timestamp, properties}. `customer_id` is
kept as sent (an ingest alias, a customer key or a remote id): it is resolved when rating, so an
alias added later attributes earlier usage. A malformed line becomes a `LineError` naming its line
number; parsing continues with the next line.

CSV: a header row; the columns transaction_id, customer_id, event_type and timestamp are required;
a `properties` column, if present, holds a JSON object; every other non-empty column becomes a
string property (`region,US` -> {"region": "US"}).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from ..bounds import LAST_YEAR, first_out_of_bounds
from ..canonical import loads
from ..rating.metrics import UsageEvent
from ..timeutil import parse_timestamp

REQUIRED = ("transaction_id", "customer_id", "event_type", "timestamp")
# Deeper properties are refused: nothing bills on them, and a 100,000-deep line was a traceback.
MAX_DEPTH = 32


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def event_from_mapping(data: Any) -> UsageEvent:
    """Validate one decoded event; raises ValueError with a readable message."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [f for f in REQUIRED if f not in data]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    for f in REQUIRED:
        if not isinstance(data[f], str) or not data[f].strip():
            raise ValueError(f"{f} must be a non-empty string")
    unknown = sorted(set(data) - {*REQUIRED, "properties"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    timestamp = _timestamp(data["timestamp"])
    if timestamp.year >= LAST_YEAR:
        raise ValueError(f"timestamp {data['timestamp']!r} is too far in the future: events must be before "
                         f"{LAST_YEAR}-01-01T00:00:00Z")
    properties = data.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object")
    problem = exactness_problem(properties)
    if problem is not None:
        raise ValueError(problem)
    return UsageEvent(data["transaction_id"], data["customer_id"], data["event_type"], timestamp, properties)


def not_utf8(text: str) -> str | None:
    """Why a line read with errors="surrogateescape" is not UTF-8 text, or None if it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(text[exc.start]) - 0xDC00 if 0xDC80 <= ord(text[exc.start]) <= 0xDCFF else None
        what = f"byte 0x{byte:02x}" if byte is not None else "a lone surrogate"
        return f"not UTF-8 text ({what} at column {exc.start + 1}); save the file as UTF-8"


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        m = _DATE.match(text)
        if m is not None:
            try:
                date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                raise ValueError(f"timestamp {text!r} has an invalid date ({m[0]} does not exist)") from None
        if "timezone" in str(exc):
            raise ValueError(f"timestamp {text!r} has no timezone (e.g. 2024-11-03T10:00:00Z)") from None
        raise ValueError(f"timestamp {text!r} is not an RFC 3339 time with a timezone "
                         "(e.g. 2024-11-03T10:00:00Z)") from None


def exactness_problem(properties: Mapping[str, Any]) -> str | None:
    """Why a property value is refused (bounds.py: the one bound on numbers, which the event engine
    sums exactly as DECIMAL(38, 12)), or None; numbers in nested values too."""
    refused = first_out_of_bounds(properties, max_depth=MAX_DEPTH)
    if refused is not None:
        return f"properties.{refused[0]}: {refused[1]}"
    for name, value in properties.items():
        if _not_finite(value, MAX_DEPTH):
            shown = "NaN" if value != value else str(value)
            return f"properties.{name}: {shown} is not a finite number"
    return None


def _not_finite(value: Any, depth: int) -> bool:
    """NaN and infinities cannot be summed by the event engine (nor stored as JSON)."""
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, Decimal):
        return not value.is_finite()
    if depth > 0 and isinstance(value, dict):
        return any(_not_finite(v, depth - 1) for v in value.values())
    if depth > 0 and isinstance(value, list):
        return any(_not_finite(v, depth - 1) for v in value)
    return False
    return None


def parse_jsonl(lines: Iterable[str]) -> Iterator[UsageEvent | LineError]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not line.isascii() and (problem := not_utf8(line)) is not None:
            yield LineError(number, problem)
            continue
        try:
            data = loads(line)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            yield LineError(number, f"nested too deeply (properties may nest at most {MAX_DEPTH} levels)")
            continue
        try:
            yield event_from_mapping(data)
        except ValueError as exc:
            yield LineError(number, str(exc))


def parse_csv(stream: TextIO) -> Iterator[UsageEvent | LineError]:
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        yield LineError(1, f"CSV header lacks column(s): {', '.join(missing)}")
        return
    for row in reader:
        number = reader.line_num
        try:
            bad = next((p for v in row.values() if isinstance(v, str) and not v.isascii()
                        and (p := not_utf8(v)) is not None), None)
            if bad is not None:
                raise ValueError(bad)
            if None in row:
                raise ValueError("more values than header columns")
            properties: dict[str, Any] = {}
            if row.get("properties"):
                properties = loads(row["properties"])
                if not isinstance(properties, dict):
                    raise ValueError("properties column must hold a JSON object")
            for name, value in row.items():
                if name not in (*REQUIRED, "properties") and value not in (None, ""):
                    properties[name] = value
            data = {f: row[f] for f in REQUIRED}
            data["properties"] = properties
            yield event_from_mapping(data)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"properties column is not valid JSON: {exc.msg}")
        except RecursionError:
            yield LineError(number, f"properties column nested too deeply (at most {MAX_DEPTH} levels)")
        except ValueError as exc:
            yield LineError(number, str(exc))


def open_events(path: str):
    """The events file as text: a UTF-8 byte order mark skipped (spreadsheets write one), bytes
    that are not UTF-8 kept as surrogates so that only their line is refused (see not_utf8)."""
    import click

    return click.open_file(path, "r", encoding="utf-8-sig", errors="surrogateescape")


def parse_file(stream: TextIO, fmt: str) -> Iterator[UsageEvent | LineError]:
    return parse_csv(stream) if fmt == "csv" else parse_jsonl(stream)


def detect_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    return "parquet" if lower.endswith((".parquet", ".pq")) else "jsonl"


def parse_text(text: str, fmt: str = "jsonl") -> tuple[list[UsageEvent], list[LineError]]:
    events, errors = [], []
    for item in parse_file(io.StringIO(text), fmt):
        (errors if isinstance(item, LineError) else events).append(item)
    return events, errors
