"""Property columns: the event properties the billable metrics read, kept as typed columns beside
the JSON, so rating aggregates columns instead of parsing every event's JSON.

A DuckDB events file keeps, for each property key it was told of (`ensure`), three columns filled
from the JSON at insert and never changed after:

    p<N>_s  VARCHAR          the value when it is a JSON string, decoded
    p<N>_n  DECIMAL(38, 12)  the value when it is a JSON number (exact: ingest refuses numbers that
                             type does not hold exactly, `parse.exactness_problem`)
    p<N>_o  VARCHAR          the JSON text when it is anything else but null (true, an object...)

All three NULL: the key is absent or null. `event_columns` maps each key to its N. The invariant
that makes them safe to read: when a key has columns, every stored event's value for it is in
them — a key added later is back-filled from the JSON in the same transaction that adds it. A key
with no columns (a metric defined after the last ingest, an events file from an older release, a
Parquet events directory, whose files cannot be rewritten) is read from the JSON, with the same
meaning (`events.queries`).

Which keys: those the store's billable metrics name (aggregation key, group keys, property
filters), at most MAX_KEYS, told by the writers (`events.billing.open_events`). The JSON stays the
truth: the columns are derived from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import duckdb

VALUE = "DECIMAL(38, 12)"
DIGITS = "('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"
MAX_KEYS = 64

TABLE = """
CREATE TABLE IF NOT EXISTS event_columns (
    key VARCHAR PRIMARY KEY,
    n INTEGER NOT NULL UNIQUE
)
"""

BASE_COLUMNS = ("transaction_id", "customer_ref", "event_type", '"timestamp"', "properties")


def metric_keys(metric_specs: Iterable[Mapping]) -> list[str]:
    """The property keys billable metric specs read, in first-named order."""
    keys: dict[str, None] = {}
    for spec in metric_specs:
        if spec.get("aggregation_key"):
            keys[spec["aggregation_key"]] = None
        for group in spec.get("group_keys") or []:
            for key in group:
                keys[key] = None
        for f in spec.get("property_filters") or []:
            keys[f["name"]] = None
    return list(keys)


def known(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Key -> N for the keys that have columns (none for a Parquet directory or an older file)."""
    (exists,) = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'event_columns' "
                            "AND table_schema = 'main'").fetchone()
    return dict(con.execute("SELECT key, n FROM event_columns ORDER BY n").fetchall()) if exists else {}


def _values(j: str) -> tuple[str, str, str]:
    """The three column values from a property's JSON text `j` (NULL when absent): the string
    decoded as the queries decode it, the number cast as they cast it."""
    from .queries import DUCKDB

    number = f"left({j}, 1) IN {DIGITS}"
    return (f"CASE WHEN starts_with({j}, '\"') THEN {DUCKDB.decoded(j)} END",
            f"CASE WHEN {number} THEN CAST({j}::VARCHAR AS {VALUE}) END",
            f"CASE WHEN {j} <> 'null' AND NOT starts_with({j}, '\"') AND NOT {number} THEN {j}::VARCHAR END")


def quoted_key(key: str) -> str:
    """A property name as one step of a JSON path: `"name"`, escaped."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_list(texts: Sequence[str]) -> str:
    """A DuckDB list literal of strings."""
    return "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in texts) + "]"


def paths(keys: Sequence[str]) -> str:
    """One json_extract path list for these keys (one parse of the properties per event)."""
    return sql_list(["$." + quoted_key(k) for k in keys])


def names(n: int) -> tuple[str, str, str]:
    return f"p{n}_s", f"p{n}_n", f"p{n}_o"


def derived(columns: Mapping[str, int], j: str = "pj") -> tuple[list[str], list[str]]:
    """(column names, their values) for these keys; the values read `j[i]`, the JSON text of the
    i-th key (1-based, in the mapping's order) as `json_extract(properties, paths(keys))` gives it."""
    cols, exprs = [], []
    for i, key in enumerate(columns, 1):
        cols += names(columns[key])
        exprs += _values(f"{j}[{i}]")
    return cols, exprs


def insert_sql(con: duckdb.DuckDBPyConnection, select: str, *, extracted: bool = False) -> str:
    """An INSERT INTO usage_events of `select` (which yields the base columns, properties as JSON),
    filling the property columns from the JSON; `extracted`: `select` also yields `pj`, the
    properties' texts for the keys with columns (`known` order), taken when they were staged."""
    kept = known(con)
    base = ", ".join(BASE_COLUMNS)
    if not kept:
        return f"INSERT INTO usage_events ({base}) SELECT {base} FROM ({select}) AS s"
    cols, exprs = derived(kept)
    source = f"({select})" if extracted else \
        f"(SELECT *, json_extract(properties, {paths(list(kept))}) AS pj FROM ({select}) AS s)"
    return f"INSERT INTO usage_events ({base}, {', '.join(cols)}) SELECT {base}, {', '.join(exprs)} FROM {source}"


def ensure(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> list[str]:
    """Give these keys columns (up to MAX_KEYS in all), back-filling the stored events, in one
    transaction. Returns the keys added. A Parquet events directory gets none."""
    from .engine import events_dir

    if events_dir(con) is not None:
        return []
    con.execute(TABLE)
    have = known(con)
    room = MAX_KEYS - len(have)
    new = [k for k in dict.fromkeys(keys) if k not in have][:max(0, room)]
    if not new:
        return []
    first = max(have.values(), default=0) + 1
    added = {k: first + i for i, k in enumerate(new)}
    con.execute("BEGIN TRANSACTION")
    try:
        for key, n in added.items():
            s, num, o = names(n)
            con.execute(f"ALTER TABLE usage_events ADD COLUMN {s} VARCHAR")
            con.execute(f"ALTER TABLE usage_events ADD COLUMN {num} {VALUE}")
            con.execute(f"ALTER TABLE usage_events ADD COLUMN {o} VARCHAR")
            con.execute("INSERT INTO event_columns VALUES (?, ?)", [key, n])
        cols, exprs = derived(added, f"json_extract(properties, {paths(list(added))})")
        (stored,) = con.execute("SELECT count(*) FROM usage_events").fetchone()
        if stored:
            con.execute(f"UPDATE usage_events SET {', '.join(f'{c} = {e}' for c, e in zip(cols, exprs))}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return new
