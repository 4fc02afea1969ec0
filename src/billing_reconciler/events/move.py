"""Move the events an older release kept in the configuration store into the DuckDB events file.

Until this release `usage_events` lived in the SQLite/PostgreSQL store. The first `init`, `ingest`
or `invoices` that opens the events file calls `move_store_events` (`events.billing.open_events`):
it reads the old table in id order (SQLAlchemy Core, in batches), writes the events through the
same ingest as a file (transaction_id dedupe, so a move interrupted and run again, or events also
ingested since, never count twice), and records in the events file that the store was moved. The
old tables (`usage_events`, `usage_shapes`, `usage_rollup`, `usage_rollup_state`) stay in the
store, untouched and no longer read: dropping them is a later schema migration of the store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone

import duckdb
from sqlalchemy import MetaData, Table, inspect, select
from sqlalchemy.engine import Engine

from ..canonical import loads
from ..rating.metrics import UsageEvent
from .engine import MOVES, MOVES_FILE, events_dir
from .ingest import IngestResult, ingest
from .parse import LineError, exactness_problem

BATCH = 50_000

def _store_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def already_moved(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    con.execute(MOVES)
    return con.execute("SELECT 1 FROM store_moves WHERE store = ?", [_store_key(engine)]).fetchone() is not None


def _old_events(engine: Engine) -> Iterator[UsageEvent | LineError]:
    table = Table("usage_events", MetaData(), autoload_with=engine)
    cols = table.c
    last = None
    with engine.connect() as conn:
        while True:
            stmt = (select(cols.id, cols.transaction_id, cols.customer_ref, cols.event_type, cols.timestamp,
                           cols.properties).order_by(cols.id).limit(BATCH))
            if last is not None:
                stmt = stmt.where(cols.id > last)
            rows = conn.execute(stmt).all()
            if not rows:
                return
            for row_id, tx, ref, event_type, stamp, properties in rows:
                last = row_id
                if isinstance(stamp, str):
                    stamp = datetime.fromisoformat(stamp)
                if stamp.tzinfo is None:  # SQLite gives back the naive UTC text it was written as
                    stamp = stamp.replace(tzinfo=timezone.utc)
                try:
                    props = loads(properties) if isinstance(properties, str) else (properties or {})
                except json.JSONDecodeError:
                    yield LineError(row_id, "stored properties are not valid JSON")
                    continue
                problem = exactness_problem(props)
                if problem is not None:
                    yield LineError(row_id, problem)
                    continue
                yield UsageEvent(tx, ref, event_type, stamp.astimezone(timezone.utc), props)


def move_store_events(con: duckdb.DuckDBPyConnection, engine: Engine) -> IngestResult | None:
    """Copy the store's old `usage_events` into the events file, once; None when there was nothing
    to do (no such table, or moved before). Errors are numbered by the old table's row id."""
    if already_moved(con, engine) or not inspect(engine).has_table("usage_events"):
        return None
    result = ingest(con, _old_events(engine))
    con.execute("INSERT INTO store_moves VALUES (?, now(), ?) ON CONFLICT DO NOTHING",
                [_store_key(engine), result.inserted])
    directory = events_dir(con)
    if directory is not None:  # a Parquet events directory keeps the record beside the events
        tmp = directory / f".{MOVES_FILE}.tmp"
        con.execute(f"COPY store_moves TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT json)")
        os.replace(tmp, directory / MOVES_FILE)
    return result
