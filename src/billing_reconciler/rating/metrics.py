"""Billable metrics: which events count, how they aggregate, and the buckets usage arrives in.

Usage reaches the engine pre-aggregated as a `UsageTable`: per metric, per customer reference (as
the event sent it), per time window and per value of the requested properties (`dims`), one
aggregate. Windows are the intervals between the engine's cut points, chosen so that nothing that
affects price or balance changes inside a window. The table is built either here, from events in
memory (`aggregate_events`, used by tests and small inputs), or by the store in SQL
(`billing_reconciler.events.aggregate`); both give the same table.

Semantics (where the sources are silent, decided here):
- `property_filters`: all must pass. `exists: true/false` tests presence; `in_values` and
  `not_in_values` compare string values (a number never equals a listed string, so it fails
  `in_values` and passes `not_in_values`).
- SUM/MAX/LATEST read JSON numbers only; an event whose aggregation key is missing or not a number
  still counts for COUNT but adds nothing to the sum.
- UNIQUE counts distinct values (their text) over the whole statement period, not per window.
- LATEST is the value of the event with the greatest timestamp in the period.
- Group values are strings; a missing property groups as None.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .timegrid import to_micros

ADDITIVE = frozenset({"COUNT", "SUM"})


@dataclass(frozen=True)
class UsageEvent:
    transaction_id: str
    customer_id: str
    event_type: str
    timestamp: datetime
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class PropertyFilter:
    name: str
    exists: bool | None = None
    in_values: frozenset[str] | None = None
    not_in_values: frozenset[str] | None = None

    def passes(self, properties: Mapping[str, Any]) -> bool:
        present = properties.get(self.name) is not None
        if self.exists is not None and present != self.exists:
            return False
        value = properties.get(self.name)
        if self.in_values is not None and not (isinstance(value, str) and value in self.in_values):
            return False
        if self.not_in_values is not None and isinstance(value, str) and value in self.not_in_values:
            return False
        return True


@dataclass(frozen=True)
class MetricQuery:
    """One billable metric, plus the event properties the engine needs it grouped by."""

    metric: str
    aggregation: str
    key: str | None
    event_types_in: frozenset[str] | None
    event_types_not_in: frozenset[str] | None
    property_filters: tuple[PropertyFilter, ...]
    dims: tuple[str, ...]

    @classmethod
    def from_spec(cls, metric: str, spec: Mapping[str, Any], dims: Iterable[str] = ()) -> MetricQuery:
        etf = spec.get("event_type_filter") or {}
        filters = tuple(
            PropertyFilter(f["name"], f.get("exists"),
                           frozenset(f["in_values"]) if f.get("in_values") else None,
                           frozenset(f["not_in_values"]) if f.get("not_in_values") else None)
            for f in spec.get("property_filters", []))
        return cls(
            metric=metric,
            aggregation=spec.get("aggregation_type", "COUNT"),
            key=spec.get("aggregation_key"),
            event_types_in=frozenset(etf["in_values"]) if etf.get("in_values") else None,
            event_types_not_in=frozenset(etf["not_in_values"]) if etf.get("not_in_values") else None,
            property_filters=filters,
            dims=tuple(sorted(set(dims))),
        )

    def matches(self, event_type: str, properties: Mapping[str, Any]) -> bool:
        if self.event_types_in is not None and event_type not in self.event_types_in:
            return False
        if self.event_types_not_in is not None and event_type in self.event_types_not_in:
            return False
        return all(f.passes(properties) for f in self.property_filters)

    @property
    def additive(self) -> bool:
        return self.aggregation in ADDITIVE


def dim_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        from ..money import format_decimal
        return format_decimal(value)
    return str(value)


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return None


# --- aggregate values -----------------------------------------------------------------------
# COUNT/SUM: Decimal; MAX: Decimal | None; UNIQUE: frozenset[str]; LATEST: (micros, Decimal) | None


def event_value(query: MetricQuery, properties: Mapping[str, Any], micros: int) -> Any:
    agg = query.aggregation
    if agg == "COUNT":
        return Decimal(1)
    raw = properties.get(query.key) if query.key else None
    if agg == "UNIQUE":
        text = dim_value(raw)
        return frozenset() if text is None else frozenset([text])
    n = number(raw)
    if agg == "SUM":
        return n if n is not None else Decimal(0)
    if agg == "MAX":
        return n
    if agg == "LATEST":
        return None if n is None else (micros, n)
    raise ValueError(f"unsupported aggregation {agg}")


def combine(aggregation: str, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if aggregation in ADDITIVE:
        return a + b
    if aggregation == "MAX":
        return max(a, b)
    if aggregation == "UNIQUE":
        return a | b
    if aggregation == "LATEST":
        return max(a, b, key=lambda v: v[0])
    raise ValueError(f"unsupported aggregation {aggregation}")


def quantity(aggregation: str, value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if aggregation == "UNIQUE":
        return Decimal(len(value))
    if aggregation == "LATEST":
        return value[1]
    return value


@dataclass
class UsageTable:
    """metric -> customer ref -> (window, dims) -> aggregate; window i is [cuts[i], cuts[i+1])."""

    cuts: list[datetime]
    rows: dict[str, dict[str, dict[tuple[int, tuple[str | None, ...]], Any]]] = field(default_factory=dict)
    queries: dict[str, MetricQuery] = field(default_factory=dict)

    def add(self, metric: str, customer_ref: str, window: int, dims: tuple, value: Any) -> None:
        per_ref = self.rows.setdefault(metric, {}).setdefault(customer_ref, {})
        k = (window, dims)
        per_ref[k] = combine(self.queries[metric].aggregation, per_ref.get(k), value)

    def refs(self) -> set[str]:
        return {ref for per in self.rows.values() for ref in per}


def window_of(cuts_micros: list[int], micros: int) -> int | None:
    i = bisect.bisect_right(cuts_micros, micros) - 1
    if i < 0 or i >= len(cuts_micros) - 1:
        return None
    return i


def aggregate_events(events: Iterable[UsageEvent], queries: Iterable[MetricQuery],
                     cuts: list[datetime]) -> UsageTable:
    """The reference aggregation, in Python: the SQL one must give the same table."""
    queries = list(queries)
    table = UsageTable(cuts=cuts, queries={q.metric: q for q in queries})
    cuts_micros = [to_micros(c) for c in cuts]
    for event in events:
        micros = to_micros(event.timestamp)
        w = window_of(cuts_micros, micros)
        if w is None:
            continue
        for q in queries:
            if not q.matches(event.event_type, event.properties):
                continue
            value = event_value(q, event.properties, micros)
            if q.aggregation in ("UNIQUE", "LATEST") and not value:
                continue  # no value to count: the event does not form a bucket (as in SQL)
            dims = tuple(dim_value(event.properties.get(d)) for d in q.dims)
            table.add(q.metric, event.customer_id, w, dims, value)
    return table
