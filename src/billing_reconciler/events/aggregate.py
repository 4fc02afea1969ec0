"""Aggregate stored usage into the rating engine's `UsageTable`, never holding events in memory.

Most usage comes pre-aggregated from the rollup written at ingest (`events.rollup_read`): rating
then reads rows in proportion to customers x days x property shapes, not to events. What the
rollup cannot answer (see there) is aggregated from the raw events here, in SQL: one GROUP BY per
billable metric over (customer_ref, time window, requested properties), with the metric's
event-type and property filters in the WHERE clause, restricted to the days and ids the rollup
left over. The time window of an event is computed in SQL from the integer `ts_epoch` column with
a balanced CASE tree over the engine's cut points (log2(cuts) comparisons).

Raw SQL on SQLite: the table is split into id ranges scanned by parallel threads (Python's sqlite3
releases the GIL while a statement runs), each with its own read connection; the partial buckets
are merged with the metric's combine rule (sums add, maxima max, distinct sets union, latest by
time, then transaction id). Sums are exact: integers sum as 64-bit integers, non-integers as
integers scaled by 1e9 (so a bucket may hold up to ~9.2e9 units of fractional values; past that
SQLite reports an overflow and the query is re-run summing floats).
Raw SQL on PostgreSQL: one query per metric; the server's parallel hash aggregate does the work,
and `numeric` sums are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from ..rating.metrics import MetricQuery, UsageTable, dim_value, number
from ..rating.timegrid import to_micros
from . import rollup_read
from .buckets import Buckets
from .rollup import DAY

SCALE = Decimal(1_000_000_000)
# LATEST on SQLite: max() over "timestamp|transaction id" text picks the latest event and breaks
# timestamp ties by transaction id; the offset makes every timestamp 19 non-negative digits.
_TS_OFFSET = 10**18


def _window_expr(cuts: Sequence[int], lo: int, hi: int) -> str:
    if hi - lo <= 1:
        return str(lo)
    mid = (lo + hi) // 2
    return f"CASE WHEN ts_epoch < {cuts[mid]} THEN {_window_expr(cuts, lo, mid)} ELSE {_window_expr(cuts, mid, hi)} END"


class _Sql:
    """Builds one metric's query for a dialect; parameters are collected in order."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"
        self.params: list[Any] = []
        self.mark = "%s" if self.pg else "?"

    def p(self, value: Any) -> str:
        self.params.append(value)
        return self.mark

    def path(self, name: str) -> str:
        return self.p(name) if self.pg else self.p('$."' + name.replace('"', '\\"') + '"')

    def value(self, name: str) -> str:
        return f"(j ->> {self.path(name)})" if self.pg else f"json_extract(properties, {self.path(name)})"

    def text(self, name: str) -> str:
        """The value as a group key: SQLite's json_extract gives booleans as 1/0, the reference
        (and PostgreSQL) as true/false."""
        if self.pg:
            return self.value(name)
        return (f"CASE {self.jtype(name)} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                f"ELSE {self.value(name)} END")

    def jtype(self, name: str) -> str:
        return f"jsonb_typeof(j -> {self.path(name)})" if self.pg else f"json_type(properties, {self.path(name)})"

    def is_number(self, name: str) -> str:
        return f"{self.jtype(name)} = 'number'" if self.pg else f"{self.jtype(name)} IN ('integer', 'real')"

    def is_string(self, name: str) -> str:
        return f"{self.jtype(name)} = 'string'" if self.pg else f"{self.jtype(name)} = 'text'"

    def present(self, name: str) -> str:
        return f"{self.jtype(name)} IS NOT NULL AND {self.jtype(name)} <> 'null'"

    def in_list(self, values) -> str:
        return "(" + ", ".join(self.p(v) for v in sorted(values)) + ")"


def build_query(q: MetricQuery, dialect: str, cuts: Sequence[int], id_range: tuple[int, int] | None = None,
                float_sums: bool = False, only: str | None = None) -> tuple[str, list[Any]]:
    """One metric's GROUP BY; `only`: a further condition (literal SQL) on the events read."""
    w = _Sql(dialect)  # WHERE clause (its parameters come after the SELECT list's)
    s = _Sql(dialect)  # SELECT list
    where = [f"ts_epoch >= {int(cuts[0])}", f"ts_epoch < {int(cuts[-1])}"]
    if id_range is not None:
        where.append(f"id >= {int(id_range[0])} AND id < {int(id_range[1])}")
    if only is not None:
        where.append(only)
    if q.event_types_in is not None:
        where.append(f"event_type IN {w.in_list(q.event_types_in)}")
    if q.event_types_not_in is not None:
        where.append(f"event_type NOT IN {w.in_list(q.event_types_not_in)}")
    for f in q.property_filters:
        if f.exists is True:
            where.append(w.present(f.name))
        elif f.exists is False:
            where.append(f"NOT ({w.present(f.name)})")
        if f.in_values is not None:
            where.append(f"({w.is_string(f.name)} AND {w.value(f.name)} IN {w.in_list(f.in_values)})")
        if f.not_in_values is not None:
            where.append(f"NOT COALESCE({w.is_string(f.name)} AND {w.value(f.name)} IN {w.in_list(f.not_in_values)}, "
                         f"{'false' if w.pg else '0'})")
    select = ["customer_ref", f"{_window_expr(cuts, 0, len(cuts) - 1)} AS w"]
    groups = ["customer_ref", "w"]
    for i, d in enumerate(q.dims):
        select.append(f"{s.text(d)} AS d{i}")
        groups.append(f"d{i}")
    agg = q.aggregation
    if agg == "COUNT":
        select.append("count(*)")
    elif agg == "SUM":
        if s.pg:
            select.append(f"sum(CASE WHEN {s.is_number(q.key)} THEN ({s.value(q.key)})::numeric END)")
        elif float_sums:
            select.append(f"total(CASE WHEN {s.is_number(q.key)} THEN {s.value(q.key)} END)")
        else:
            select.append(f"sum(CASE WHEN {s.jtype(q.key)} = 'integer' THEN {s.value(q.key)} END)")
            select.append(f"sum(CASE WHEN {s.jtype(q.key)} = 'real' THEN "
                          f"CAST(round({s.value(q.key)} * 1000000000) AS INTEGER) END)")
    elif agg == "MAX":
        cast = "::numeric" if s.pg else ""
        select.append(f"max(CASE WHEN {s.is_number(q.key)} THEN ({s.value(q.key)}){cast} END)")
    elif agg == "UNIQUE":
        select.append(f"{s.text(q.key)} AS u")
        groups.append("u")
        where.append(w.present(q.key))
    elif agg == "LATEST":
        where.append(w.is_number(q.key))
        if s.pg:
            order = 'ORDER BY ts_epoch DESC, transaction_id COLLATE "C" DESC'
            select.append(f"max(ts_epoch), (array_agg(transaction_id {order}))[1], "
                          f"(array_agg(({s.value(q.key)})::numeric {order}))[1]")
        else:
            select.append(f"max(printf('%019d', ts_epoch + {_TS_OFFSET}) || transaction_id), ts_epoch, "
                          f"transaction_id, {s.value(q.key)}")
    source = "usage_events"
    if s.pg:  # parse each row's JSON once
        source = ("(SELECT id, transaction_id, customer_ref, event_type, ts_epoch, properties::jsonb AS j "
                  "FROM usage_events) AS e")
    sql = f"SELECT {', '.join(select)} FROM {source} WHERE {' AND '.join(where)} GROUP BY {', '.join(groups)}"
    return sql, s.params + w.params


def _value(q: MetricQuery, row: Sequence[Any], float_sums: bool) -> Any:
    """The aggregate from the row's trailing columns, as `events.buckets` holds it."""
    agg = q.aggregation
    tail = row[2 + len(q.dims):]
    if agg == "COUNT":
        return tail[0]
    if agg == "SUM":
        if len(tail) == 2:  # SQLite exact: integer part + real part scaled by 1e9
            whole = Decimal(tail[0] or 0)
            scaled = Decimal(tail[1] or 0) / SCALE
            return whole + scaled
        return number(tail[0]) if tail[0] is not None else Decimal(0)
    if agg == "MAX":
        return number(tail[0])
    if agg == "UNIQUE":
        text = dim_value(_plain(tail[0]))
        return frozenset() if text is None else frozenset([text])
    if agg == "LATEST":
        ts, tx, value = tail[-3:]
        n = number(_plain(value))
        return None if n is None else (int(ts), tx, n)
    raise ValueError(agg)


def _plain(value: Any) -> Any:
    """SQLite returns JSON reals as floats: give them back as the Decimal they were written as."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _add_rows(out: Buckets, q: MetricQuery, rows, float_sums: bool) -> None:
    n = len(q.dims)
    for row in rows:
        dims = tuple(dim_value(_plain(v)) for v in row[2:2 + n])
        value = _value(q, row, float_sums)
        if q.aggregation == "LATEST" and value is None:
            continue
        out.add(q.metric, (row[0], int(row[1]), dims), value)


def _sqlite_path(engine: Engine) -> str | None:
    db = engine.url.database
    return db if db and db != ":memory:" else None


def _sqlite_run(path: str, sql: str, params: list[Any]) -> list[tuple]:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _leftover(coverage: rollup_read.Coverage) -> str | None:
    """The events the rollup left to the raw path for the metrics it answered (literal SQL)."""
    parts = []
    if coverage.after_id is not None:
        parts.append(f"id > {int(coverage.after_id)}")
    start = None
    for i, day in enumerate(coverage.raw_days):  # consecutive days as one range
        if start is None:
            start = day
        if i + 1 == len(coverage.raw_days) or coverage.raw_days[i + 1] != day + 1:
            parts.append(f"(ts_epoch >= {int(start) * DAY} AND ts_epoch < {(int(day) + 1) * DAY})")
            start = None
    return "(" + " OR ".join(parts) + ")" if parts else None


def aggregate(engine: Engine, queries: Sequence[MetricQuery], cuts: Sequence[datetime], *,
              workers: int = 2, use_rollup: bool = True) -> UsageTable:
    """Aggregate the store's usage for these metric queries; returns the merged UsageTable.
    `use_rollup=False` reads every event (to check the rollup against, or to measure it)."""
    out = Buckets(queries)
    if len(cuts) < 2 or not queries:
        return out.table(list(cuts))
    micros = [to_micros(c) for c in cuts]
    dialect = engine.dialect.name
    if not use_rollup:
        _aggregate_raw(engine, [(q, None) for q in queries], micros, out, workers)
        return out.table(list(cuts))
    with engine.connect() as conn:
        coverage = rollup_read.read_snapshot(conn.connection.driver_connection, dialect == "postgresql",
                                             queries, micros, out)
    leftover = _leftover(coverage)
    work = [(q, None) for q in coverage.raw_queries]
    if leftover is not None:
        work += [(q, leftover) for q in coverage.rolled]
    if work:
        _aggregate_raw(engine, work, micros, out, workers)
    return out.table(list(cuts))


def _aggregate_raw(engine: Engine, work: list[tuple[MetricQuery, str | None]], micros: list[int], out: Buckets,
                   workers: int) -> None:
    dialect = engine.dialect.name
    path = _sqlite_path(engine) if dialect == "sqlite" else None
    if path is None:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            for q, only in work:
                sql, params = build_query(q, dialect, micros, only=only)
                cur = raw.cursor()
                cur.execute(sql, params)
                _add_rows(out, q, cur.fetchall(), False)
        return
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        lo, hi = raw.execute("SELECT min(id), max(id) FROM usage_events").fetchone()
    if lo is None:
        return
    parts = max(1, workers)
    step = (hi - lo + parts) // parts or 1
    ranges = [(lo + i * step, min(hi + 1, lo + (i + 1) * step)) for i in range(parts)]
    lock = threading.Lock()

    def run(q: MetricQuery, only: str | None, id_range: tuple[int, int]) -> None:
        import sqlite3

        try:
            sql, params = build_query(q, dialect, micros, id_range, only=only)
            rows, float_sums = _sqlite_run(path, sql, params), False
        except sqlite3.OperationalError as exc:
            if "overflow" not in str(exc):
                raise
            sql, params = build_query(q, dialect, micros, id_range, float_sums=True, only=only)
            rows, float_sums = _sqlite_run(path, sql, params), True
        with lock:
            _add_rows(out, q, rows, float_sums)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        for f in [pool.submit(run, q, only, r) for q, only in work for r in ranges]:
            f.result()
