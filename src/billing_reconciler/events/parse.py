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

from ..canonical import loads
from ..rating.metrics import UsageEvent
from ..timeutil import parse_timestamp

REQUIRED = ("transaction_id", "customer_id", "event_type", "timestamp")


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
    properties = data.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object")
    problem = exactness_problem(properties)
    if problem is not None:
        raise ValueError(problem)
    return UsageEvent(data["transaction_id"], data["customer_id"], data["event_type"], timestamp, properties)


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


# What the event engine sums exactly: DuckDB reads JSON integers as 64-bit integers and other
# numbers as doubles (whose shortest text is exact up to 15 significant digits), and sums them as
# DECIMAL(38, 12). A number outside that is refused at ingest, with its line, rather than summed
# wrongly or failing at `invoices` later.
MAX_FRACTION_DIGITS = 12
MAX_SIGNIFICANT_DIGITS = 15
MAX_ABS = 10**19


def exactness_problem(properties: Mapping[str, Any]) -> str | None:
    """Why a property value cannot be summed exactly, or None; numbers in nested values too."""
    for name, value in properties.items():
        problem = _number_problem(value)
        if problem is not None:
            return f"property {name!r}: {problem}"
    return None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return None
    if isinstance(value, int):
        if abs(value) < MAX_ABS:
            return None
        shown = str(value) if len(str(value)) <= 40 else str(Decimal(value).normalize())
        return f"{shown} is too large; usage values must be below 1e19"
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            return f"{value} is not a finite number"
        text = format(value, "f") if abs(value.adjusted()) < 40 else str(value)
        if abs(value) >= MAX_ABS:
            return f"{text} is too large; usage values must be below 1e19"
        digits, exponent = value.normalize().as_tuple()[1:]
        if -exponent > MAX_FRACTION_DIGITS:
            return f"{text} has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
        if exponent < 0 and len(digits) > MAX_SIGNIFICANT_DIGITS:
            return f"{text} has more than {MAX_SIGNIFICANT_DIGITS} significant digits"
        return None
    if isinstance(value, dict):
        for v in value.values():
            problem = _number_problem(v)
            if problem is not None:
                return problem
    if isinstance(value, list):
        for v in value:
            problem = _number_problem(v)
            if problem is not None:
                return problem
    return None


def parse_jsonl(lines: Iterable[str]) -> Iterator[UsageEvent | LineError]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = loads(line)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
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
        except ValueError as exc:
            yield LineError(number, str(exc))


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
