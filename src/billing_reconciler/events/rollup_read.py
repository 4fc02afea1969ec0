"""Rating's read of the usage rollup (`events.rollup`): what it can answer, and the answer.

A metric is answered from the rollup unless it filters on, groups by or counts UNIQUE a property
the rollup does not keep: one that is numeric in some event (measures keep sums, maxima and latest
values, not each value) or one excluded for its many distinct values. Those metrics are
aggregated from the raw events, as are, for the others,
- the days where some rollup row has events on both sides of a cut point (a contract starting at
  noon, say): the rollup cannot split them, the events can;
- events newer than the rollup's coverage (written by a program without the rollup).
Filters and group keys are evaluated once per shape with the reference functions
(`MetricQuery.matches`, `dim_value`), so they mean exactly what they mean in memory.

The rows are streamed (memory does not grow with them). Per row: one dict lookup finds the
metrics that take its (event type, shape) and their group values, then one combine per metric.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..rating.metrics import MetricQuery, dim_value
from . import rollup
from .buckets import Buckets
from .shapes import parse_shape

_ZERO_VALUE = 0  # a numeric stand-in for a measure in the filter view: present, not a string


@dataclass
class Coverage:
    """What the raw events must still supply after the rollup was read."""

    raw_queries: list[MetricQuery]  # every event, for metrics the rollup cannot answer
    rolled: list[MetricQuery] = field(default_factory=list)
    raw_days: list[int] = field(default_factory=list)  # for `rolled`: these UTC days ...
    after_id: int | None = None  # ... and events with a greater id (None: there are none)


def _bucket_expr(column: str, cuts: Sequence[int], lo: int, hi: int) -> str:
    """SQL for the number of cuts <= column, for cuts[lo:hi] (a balanced CASE tree)."""
    if lo >= hi:
        return str(lo)
    mid = (lo + hi) // 2
    return (f"CASE WHEN {column} < {int(cuts[mid])} THEN {_bucket_expr(column, cuts, lo, mid)} "
            f"ELSE {_bucket_expr(column, cuts, mid + 1, hi)} END")


def _answerable(q: MetricQuery, numeric: set[str], excluded: set[str]) -> bool:
    names = {f.name for f in q.property_filters} | set(q.dims)
    if q.aggregation == "UNIQUE" and q.key is not None:
        names.add(q.key)
    return not (names & excluded) and not (set(q.dims) & numeric) and not (
        q.aggregation == "UNIQUE" and q.key in numeric)


class _Shapes:
    def __init__(self, rows: Sequence[tuple[int, str]]):
        self.views: dict[int, dict[str, Any]] = {}
        self.measures: dict[int, tuple[str, ...]] = {}
        self.numeric: set[str] = set()
        for shape_id, text in rows:
            kept, names = parse_shape(text)
            view = dict(kept)
            view.update({n: _ZERO_VALUE for n in names})
            self.views[shape_id] = view
            self.measures[shape_id] = names
            self.numeric.update(names)


def read_snapshot(dbapi, pg: bool, queries: Sequence[MetricQuery], cuts: Sequence[int], out: Buckets) -> Coverage:
    """`read` in one read transaction: the coverage, the cut-straddling days and the rows must
    agree with each other while ingests commit. (The raw events are read later: an ingest in
    between adds usage the raw part may see and the rollup part did not, never usage twice.)"""
    if pg:
        dbapi.rollback()
        dbapi.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        dbapi.execute("BEGIN")
    try:
        return read(dbapi, pg, queries, cuts, out)
    finally:
        if pg:
            dbapi.rollback()
        else:
            dbapi.execute("ROLLBACK")


def read(dbapi, pg: bool, queries: Sequence[MetricQuery], cuts: Sequence[int], out: Buckets) -> Coverage:
    """Add what the rollup can answer to `out`; returns what the raw events must add."""
    if not rollup.has_rollup(dbapi, pg):
        return Coverage(list(queries))
    state = dbapi.execute("SELECT max_event_id, excluded FROM usage_rollup_state WHERE id = 1").fetchone()
    if state is None:
        return Coverage(list(queries))
    max_id, excluded = state[0], set(json.loads(state[1]))
    shapes = _Shapes(dbapi.execute("SELECT id, shape FROM usage_shapes").fetchall())
    rolled = [q for q in queries if _answerable(q, shapes.numeric, excluded)]
    coverage = Coverage([q for q in queries if q not in rolled], rolled)
    if not rolled:
        return coverage
    top = rollup.max_event_id(dbapi)
    coverage.after_id = max_id if top > max_id else None

    first_day, last_day = cuts[0] // rollup.DAY, (cuts[-1] - 1) // rollup.DAY
    n = len(cuts)
    b_min, b_max = _bucket_expr("min_ts", cuts, 0, n), _bucket_expr("max_ts", cuts, 0, n)
    days = f"day >= {int(first_day)} AND day <= {int(last_day)}"
    types = _event_types(rolled)
    if types is not None:
        marks = ", ".join("%s" if pg else "?" for _ in types)
        days += f" AND event_type IN ({marks})"
    params = sorted(types or ())
    raw_days = {d for (d,) in dbapi.execute(f"SELECT DISTINCT day FROM usage_rollup WHERE {days} "
                                            f"AND {b_min} <> {b_max}", params).fetchall()}
    coverage.raw_days = sorted(raw_days)
    sql = (f"SELECT day, customer_ref, event_type, shape_id, events, {b_min}, measures FROM usage_rollup "
           f"WHERE {days} AND {b_min} = {b_max} AND {b_min} >= 1 AND {b_min} < {n}")
    cursor = dbapi.cursor(name="rollup_read") if pg else dbapi.cursor()
    cursor.execute(sql, params)
    _add_rows(cursor, rolled, shapes, raw_days, out)
    cursor.close()
    return coverage


def _event_types(queries: Sequence[MetricQuery]) -> set[str] | None:
    """The event types any of the queries can take, or None if one takes any type."""
    types: set[str] = set()
    for q in queries:
        if q.event_types_in is None:
            return None
        types |= q.event_types_in - (q.event_types_not_in or frozenset())
    return types


def _plan(queries: Sequence[MetricQuery], shapes: _Shapes, event_type: str, shape_id: int,
          out: Buckets) -> list[tuple]:
    """(bucket dict, aggregation, dims, measure index or None, UNIQUE value) for each query
    taking events of this type and shape."""
    view = shapes.views[shape_id]
    names = shapes.measures[shape_id]
    plan = []
    for q in queries:
        if not q.matches(event_type, view):
            continue
        dims = tuple(dim_value(view.get(d)) for d in q.dims)
        agg = q.aggregation
        unique = None
        if agg == "UNIQUE":
            text = dim_value(view.get(q.key)) if q.key else None
            if text is None:
                continue  # no value to count: no bucket (as for events)
            unique = frozenset([text])
        index = names.index(q.key) if q.key in names else None
        if agg == "LATEST" and index is None:
            continue  # no number: no bucket
        plan.append((out.rows[q.metric], agg, dims, index, unique))
    return plan


def _add_rows(cursor, queries: Sequence[MetricQuery], shapes: _Shapes, raw_days: set[int], out: Buckets) -> None:
    # The hot loop of rating: combine rules inlined (see Buckets.add for the same rules).
    plans: dict[tuple[str, int], list[tuple]] = {}
    measure, latest = rollup.measure, rollup.latest
    while True:
        rows = cursor.fetchmany(10_000)
        if not rows:
            return
        for day, ref, event_type, shape_id, events, bucket, measures in rows:
            if raw_days and day in raw_days:
                continue
            plan = plans.get((event_type, shape_id))
            if plan is None:
                plan = plans[(event_type, shape_id)] = _plan(queries, shapes, event_type, shape_id, out)
            for d, agg, dims, index, unique in plan:
                k = (ref, bucket - 1, dims)
                if agg == "COUNT":
                    d[k] = d.get(k, 0) + events
                elif agg == "SUM":
                    d[k] = d.get(k, 0) + (0 if index is None else measure(measures, index, 0))
                elif agg == "MAX":
                    v = None if index is None else measure(measures, index, 1)
                    if k not in d:
                        d[k] = v
                    elif v is not None and (d[k] is None or v > d[k]):
                        d[k] = v
                elif agg == "UNIQUE":
                    d[k] = d[k] | unique if k in d else unique
                else:  # LATEST
                    v = latest(measures, index)
                    old = d.get(k)
                    if old is None or v[:2] > old[:2]:
                        d[k] = v
