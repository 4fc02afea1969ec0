"""Move the events an older release kept in the configuration store into the DuckDB events file.

Until this release `usage_events` lived in the SQLite/PostgreSQL store; schema v7 drops it (with
`usage_shapes`, `usage_rollup`, `usage_rollup_state`). Two paths move its rows:

- `init` of an older store moves them *before* it upgrades the store (`move_before_upgrade`, called
  by `Store.init` in its transaction under the store lock, before the migrations): every row is read
  again and written through the same ingest as a file, so rows moved before (by an `ingest` or an
  interrupted `init`) or ingested since are not counted twice (transaction_id dedupe). Only when all
  of them are in the events file may revision v7 drop the table; a row the events file refuses, or
  a PostgreSQL store without an events database, stops the upgrade and changes nothing in the store.
- `ingest` and `invoices` on a store not upgraded yet move them on their first open of the events
  file (`move_store_events`, via `events.billing.open_events`), once: the move is recorded in the
  events file (`store_moves`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import duckdb
from sqlalchemy import MetaData, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from ..canonical import loads
from ..rating.metrics import UsageEvent
from .engine import MOVES, MOVES_FILE, EventsError, close, connect, events_dir, events_path
from .ingest import IngestResult, ingest
from .parse import LineError, exactness_problem

BATCH = 50_000
SHOWN = 10  # refused rows named in an error


def _store_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def already_moved(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    con.execute(MOVES)
    return con.execute("SELECT 1 FROM store_moves WHERE store = ?", [_store_key(engine)]).fetchone() is not None


def pending_events(conn: Connection) -> int:
    """The rows of the store's old `usage_events` table (0 when it has none, or no such table)."""
    if not inspect(conn).has_table("usage_events"):
        return 0
    return int(conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one())


def _old_events(source: Engine | Connection) -> Iterator[UsageEvent | LineError]:
    if isinstance(source, Engine):
        with source.connect() as conn:
            yield from _old_events(conn)
        return
    table = Table("usage_events", MetaData(), autoload_with=source)
    cols = table.c
    last = None
    while True:
        stmt = (select(cols.id, cols.transaction_id, cols.customer_ref, cols.event_type, cols.timestamp,
                       cols.properties).order_by(cols.id).limit(BATCH))
        if last is not None:
            stmt = stmt.where(cols.id > last)
        rows = source.execute(stmt).all()
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


def move_store_events(con: duckdb.DuckDBPyConnection, source: Engine | Connection, *,
                      again: bool = False) -> IngestResult | None:
    """Copy the store's old `usage_events` into the events file; None when there was nothing to do
    (no such table, or moved before and not `again`). `source`: the store's engine, or a connection
    whose transaction is read. Errors are numbered by the old table's row id."""
    engine = source if isinstance(source, Engine) else source.engine
    if (not again and already_moved(con, engine)) or not inspect(source).has_table("usage_events"):
        return None
    result = ingest(con, _old_events(source))
    con.execute(MOVES)
    con.execute("INSERT INTO store_moves VALUES (?, now(), ?) ON CONFLICT DO NOTHING",
                [_store_key(engine), result.inserted])
    directory = events_dir(con)
    if directory is not None:  # a Parquet events directory keeps the record beside the events
        tmp = directory / f".{MOVES_FILE}.tmp"
        con.execute(f"COPY store_moves TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT json)")
        os.replace(tmp, directory / MOVES_FILE)
    return result


def move_before_upgrade(conn: Connection, store_url: str, events_db: str | os.PathLike[str] | None = None, *,
                        memory_limit: str | None = None) -> IngestResult | None:
    """Inside `init`'s transaction, before the migrations: put every row of the store's old
    `usage_events` into the events file (None when it holds none). Raises EventsError, leaving the
    store as it was, when they cannot all be moved: no events file for a PostgreSQL store, or rows
    the events file refuses (named by row id)."""
    from ..store.urls import display
    from ..store.version import LATEST_VERSION

    count = pending_events(conn)
    if not count:
        return None
    held = (f"the store {display(store_url)} holds {count} event(s) in its old usage_events table, which the "
            f"upgrade to schema v{LATEST_VERSION} drops")
    try:
        path = events_path(store_url, events_db)
    except EventsError:
        if events_db or os.environ.get("BILLING_RECONCILER_EVENTS_DB"):
            raise
        raise EventsError(f"{held}, and a PostgreSQL store has no default events database: pass --events-db PATH "
                          f"(or set BILLING_RECONCILER_EVENTS_DB) so its {count} events are moved into it before the "
                          "upgrade. Nothing was changed") from None
    if conn.dialect.name == "postgresql":
        # No writer may add an event between this read and the drop (SQLite: init holds the write lock).
        conn.execute(text("LOCK TABLE usage_events IN SHARE MODE"))
    con = connect(path, memory_limit=memory_limit)
    try:
        result = move_store_events(con, conn, again=True)
    finally:
        close(con)
    assert result is not None
    if result.errors:
        named = "; ".join(f"row {e.line}: {e.message}" for e in result.errors[:SHOWN])
        more = f" (and {len(result.errors) - SHOWN} more)" if len(result.errors) > SHOWN else ""
        raise EventsError(f"{held}, and {len(result.errors)} of them cannot be moved into the events database "
                          f"{path}: {named}{more}. Correct or delete those rows of usage_events, then run "
                          "`billing-reconciler init` again (the others are in the events database already; they "
                          "will not be counted twice). The store was not changed")
    if result.read != count:  # every row read is in the events file: inserted now, or by its transaction_id before
        raise EventsError(f"{held}, but {result.read} of them were read to be moved; run `billing-reconciler init` "
                          "again. The store was not changed")
    return result


def mover(store_url: str, events_db: str | os.PathLike[str] | None = None, *, memory_limit: str | None = None,
          moved: list[IngestResult] | None = None) -> Callable[[Connection], bool]:
    """`Store.init(move_events=...)`: moves the old events before the upgrade (`move_before_upgrade`);
    `moved` receives the move's result, if one ran."""

    def move(conn: Connection) -> bool:
        result = move_before_upgrade(conn, store_url, events_db, memory_limit=memory_limit)
        if result is not None and moved is not None:
            moved.append(result)
        return True

    return move
