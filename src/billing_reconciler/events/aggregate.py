"""Aggregate stored usage into the rating engine's `UsageTable`, in SQL run by DuckDB.

One GROUP BY per billable metric over (customer_ref, time window, requested properties), with the
metric's event-type and property filters in the WHERE clause; the events never reach Python, only
the groups do. The window of an event is a balanced CASE tree over the engine's cut points
(log2(cuts) comparisons of an integer). Semantics are those of `rating.metrics` (the reference
`aggregate_events`, which the tests compare this with):

- sums and maxima read JSON numbers only, cast to DECIMAL(38, 12): exact, because ingest refuses a
  number outside what that type and DuckDB's JSON reader hold exactly (`parse.exactness_problem`);
- group values and UNIQUE values are text; a number groups by its decimal value (DuckDB writes the
  JSON number 3.0 as "3.0", the reference as "3"), so numeric groups carry their DECIMAL value and
  are formatted here; groups that format alike merge in `Buckets` by the metric's rule;
- LATEST is the value of the greatest (timestamp, transaction id): ties go to the greater id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

import duckdb

from ..money import format_decimal, normalize
from ..rating.metrics import MetricQuery, UsageTable
from ..rating.timegrid import to_micros
from .buckets import Buckets

VALUE = "DECIMAL(38, 12)"


class AggregationError(Exception):
    pass


def _window_expr(cuts: Sequence[int], lo: int, hi: int) -> str:
    if hi - lo <= 1:
        return str(lo)
    mid = (lo + hi) // 2
    return f"CASE WHEN t < {cuts[mid]} THEN {_window_expr(cuts, lo, mid)} ELSE {_window_expr(cuts, mid, hi)} END"


class _Sql:
    """One metric's query. The properties it reads are extracted once per event, as a list of JSON
    texts (one parse of the properties; a json_type + json_extract_string per use cost 3x), and
    classified by their first character: `"` a string, a digit or `-` a number (ingest admits no
    NaN or Infinity), `null` or missing absent, else a boolean (or an object or array)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def j(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return f"j[{self.names.index(name) + 1}]"

    def present(self, name: str) -> str:
        return f"coalesce({self.j(name)} <> 'null', false)"

    def is_string(self, name: str) -> str:
        return f"coalesce(starts_with({self.j(name)}, '\"'), false)"

    def is_number(self, name: str) -> str:
        return f"coalesce(left({self.j(name)}, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), false)"

    def string(self, name: str) -> str:
        j = self.j(name)
        return f"(CASE WHEN contains({j}, '\\') THEN {j} ->> '$' ELSE {j}[2:-2] END)"

    def text(self, name: str) -> str:
        """The value as text (a group key): strings decoded, numbers and booleans as written."""
        j = self.j(name)
        return (f"(CASE WHEN {j} IS NULL OR {j} = 'null' THEN NULL WHEN {self.is_string(name)} THEN {self.string(name)} "
                f"ELSE {j}::VARCHAR END)")

    def number(self, name: str) -> str:
        return f"(CASE WHEN {self.is_number(name)} THEN CAST({self.j(name)}::VARCHAR AS {VALUE}) END)"

    def group_value(self, name: str, alias: str) -> list[str]:
        """Two columns: the text, and the decimal value when the property is a number."""
        return [f"{self.text(name)} AS {alias}", f"{self.number(name)} AS {alias}n"]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_list(values) -> str:
    return "(" + ", ".join(_literal(v) for v in sorted(values)) + ")"


def build_query(q: MetricQuery, cuts: Sequence[int]) -> str:
    s = _Sql()
    inner_where = [f"t >= {int(cuts[0])}", f"t < {int(cuts[-1])}"]
    if q.event_types_in is not None:
        inner_where.append(f"event_type IN {_in_list(q.event_types_in)}")
    if q.event_types_not_in is not None:
        inner_where.append(f"event_type NOT IN {_in_list(q.event_types_not_in)}")
    where = []
    for f in q.property_filters:
        if f.exists is True:
            where.append(s.present(f.name))
        elif f.exists is False:
            where.append(f"NOT {s.present(f.name)}")
        if f.in_values is not None:
            where.append(f"({s.is_string(f.name)} AND {s.string(f.name)} IN {_in_list(f.in_values)})")
        if f.not_in_values is not None:
            where.append(f"NOT ({s.is_string(f.name)} AND {s.string(f.name)} IN {_in_list(f.not_in_values)})")
    select = ["customer_ref", f"{_window_expr(cuts, 0, len(cuts) - 1)} AS w"]
    groups = ["customer_ref", "w"]
    for i, d in enumerate(q.dims):
        select += s.group_value(d, f"d{i}")
        groups += [f"d{i}", f"d{i}n"]
    agg = q.aggregation
    if agg == "COUNT":
        select.append("count(*)")
    elif agg == "SUM":
        select.append(f"sum({s.number(q.key)})")
    elif agg == "MAX":
        select.append(f"max({s.number(q.key)})")
    elif agg == "UNIQUE":
        select += s.group_value(q.key, "u")
        groups += ["u", "un"]
        where.append(s.present(q.key))
    elif agg == "LATEST":
        where.append(s.is_number(q.key))
        select.append(f"max(struct_pack(t := t, tx := transaction_id, v := {s.number(q.key)}))")
    else:
        raise ValueError(f"unsupported aggregation {agg}")
    paths = "[" + ", ".join(_literal('$."' + n.replace("\\", "\\\\").replace('"', '\\"') + '"') for n in s.names) + "]"
    extract = f", json_extract(properties, {paths}) AS j" if s.names else ""
    source = (f'(SELECT transaction_id, customer_ref, t{extract} FROM (SELECT transaction_id, customer_ref, event_type, '
              f'epoch_us("timestamp") AS t, properties FROM usage_events) WHERE {" AND ".join(inner_where)})')
    return (f"SELECT {', '.join(select)} FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} "
            f"GROUP BY {', '.join(groups)}")


def _group_text(text: str | None, value: Decimal | None) -> str | None:
    if value is not None:
        return format_decimal(value)
    return text


def _exact(value: Decimal) -> Decimal:
    """DECIMAL(38, 12) comes back with twelve places: drop the trailing zeros, in a context wide
    enough for all 38 digits (the default one has 28 and would round)."""
    with localcontext(prec=40):
        return Decimal(normalize(value))


def _add_rows(out: Buckets, q: MetricQuery, rows) -> None:
    n = len(q.dims)
    agg = q.aggregation
    for row in rows:
        dims = tuple(_group_text(row[2 + 2 * i], row[3 + 2 * i]) for i in range(n))
        tail = row[2 + 2 * n:]
        if agg == "COUNT":
            value: Any = Decimal(tail[0])
        elif agg == "SUM":
            value = Decimal(0) if tail[0] is None else _exact(tail[0])
        elif agg == "MAX":
            value = None if tail[0] is None else _exact(tail[0])
        elif agg == "UNIQUE":
            value = frozenset([_group_text(tail[0], tail[1])])
        else:  # LATEST
            latest = tail[0]
            value = (latest["t"], latest["tx"], _exact(latest["v"]))
        out.add(q.metric, (row[0], int(row[1]), dims), value)


def aggregate(con: duckdb.DuckDBPyConnection, queries: Sequence[MetricQuery], cuts: Sequence[datetime]) -> UsageTable:
    """Aggregate the stored usage for these metric queries; returns the merged UsageTable."""
    out = Buckets(queries)
    if len(cuts) < 2 or not queries:
        return out.table(list(cuts))
    micros = [to_micros(c) for c in cuts]
    for q in queries:
        try:
            rows = con.execute(build_query(q, micros)).fetchall()
        except duckdb.OutOfRangeException as exc:
            raise AggregationError(f"usage of metric {q.metric!r} sums past what DECIMAL(38, 12) holds: {exc}") from None
        _add_rows(out, q, rows)
    return out.table(list(cuts))
