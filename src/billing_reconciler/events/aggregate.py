"""Aggregate stored usage into the rating engine's `UsageTable`, in SQL run by DuckDB (or Spark:
`events.spark`; both run the queries `events.queries` builds).

One GROUP BY per billable metric over (customer_ref, time window, requested properties), with the
metric's event-type and property filters in the WHERE clause; the events never reach Python, only
the groups do. The window of an event is a balanced CASE tree over the engine's cut points
(log2(cuts) comparisons of an integer). Semantics are those of `rating.metrics` (the reference
`aggregate_events`, which the tests compare this with):

- a property the events file keeps in columns (`events.columns`: those the store's metrics read) is
  read from them, any other from the JSON, with the same meaning;
- sums and maxima read JSON numbers only, cast to DECIMAL(38, 12): exact, because ingest refuses a
  number outside what that type and DuckDB's JSON reader hold exactly (`parse.exactness_problem`);
- group values and UNIQUE values are text; a number groups by its decimal value (DuckDB writes the
  JSON number 3.0 as "3.0", the reference as "3"), so numeric groups carry their DECIMAL value and
  are formatted here; groups that format alike merge in `Buckets` by the metric's rule;
- LATEST is the value of the greatest (timestamp, transaction id): ties go to the greater id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

import duckdb

from ..money import format_decimal, normalize
from ..rating.metrics import MetricQuery, UsageTable
from ..rating.timegrid import to_micros
from .buckets import Buckets
from .columns import known
from .engine import EventsError
from .queries import VALUE, build_query


class AggregationError(EventsError):
    """Usage the engine cannot aggregate exactly; the CLI prints it (an EventsError), no traceback."""


def _group_text(text: str | None, value: Decimal | None) -> str | None:
    if value is not None:
        return format_decimal(value)
    return text


def _exact(value: Decimal) -> Decimal:
    """DECIMAL(38, 12) comes back with twelve places: drop the trailing zeros, in a context wide
    enough for all 38 digits (the default one has 28 and would round)."""
    with localcontext(prec=40):
        return Decimal(normalize(value))


def add_rows(out: Buckets, q: MetricQuery, rows: Iterable[Sequence]) -> None:
    """Add one metric query's result rows (either engine's) to the buckets."""
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
    kept = known(con)
    for q in queries:
        try:
            rows = con.execute(build_query(q, micros, columns=kept)).fetchall()
        except duckdb.OutOfRangeException as exc:
            raise AggregationError(f"usage of metric {q.metric!r} sums past what {VALUE} holds: {exc}") from None
        add_rows(out, q, rows)
    return out.table(list(cuts))
