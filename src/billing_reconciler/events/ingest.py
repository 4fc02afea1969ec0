"""Store usage events: idempotent by transaction_id, in batches, on SQLite and PostgreSQL.

`INSERT ... ON CONFLICT (transaction_id) DO NOTHING` on both backends, so re-ingesting a file
(or overlapping files) never duplicates usage. Batches go through the DBAPI directly: SQLite gets
`executemany` inside one transaction per batch; PostgreSQL gets the batch COPYed into a
temporary table and inserted from there, the fastest path psycopg offers. The events the insert
actually stored are added to the usage rollup (`events.rollup`) in the same transaction, so a
re-ingest adds nothing there either. A transaction id repeated within a batch counts once, the
first occurrence, as it would across batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy.engine import Engine

from ..rating.metrics import UsageEvent
from ..rating.timegrid import to_micros
from . import rollup
from .encode import properties_text, timestamp_text
from .parse import LineError

# Larger batches amortise SQLite's per-transaction page writes (the transaction_id index is
# written in random order); 100k parsed events are ~100 MB.
BATCH = 100_000
COLUMNS = ("transaction_id", "customer_ref", "event_type", "timestamp", "ts_epoch", "properties")


@dataclass
class IngestResult:
    read: int = 0
    inserted: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.read - self.inserted


def _sqlite_row(e: UsageEvent, micros: int) -> tuple:
    # The text form SQLAlchemy's SQLite DateTime reads back (UTC, naive).
    return (e.transaction_id, e.customer_id, e.event_type, timestamp_text(micros), micros,
            properties_text(e.properties))


def _pg_row(e: UsageEvent, micros: int) -> tuple:
    return (e.transaction_id, e.customer_id, e.event_type, e.timestamp, micros, properties_text(e.properties))


def _insert_sqlite(dbapi, events: list[UsageEvent], micros: list[int]) -> set[str] | None:
    """Insert; returns the transaction ids stored, or None when all were."""
    before_changes, before_id = dbapi.total_changes, rollup.max_event_id(dbapi)
    dbapi.cursor().executemany(
        f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (transaction_id) DO NOTHING", [_sqlite_row(e, t) for e, t in zip(events, micros)])
    if dbapi.total_changes - before_changes == len(events):
        return None
    return {tx for (tx,) in dbapi.execute("SELECT transaction_id FROM usage_events WHERE id > ?", (before_id,))}


def _insert_postgres(dbapi, events: list[UsageEvent], micros: list[int]) -> set[str] | None:
    cols = ", ".join(COLUMNS)
    with dbapi.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS usage_events_in (transaction_id text, customer_ref text, "
                    "event_type text, timestamp timestamptz, ts_epoch bigint, properties text) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY usage_events_in ({cols}) FROM STDIN") as copy:
            for e, t in zip(events, micros):
                copy.write_row(_pg_row(e, t))
        cur.execute(f"INSERT INTO usage_events ({cols}) SELECT {cols} FROM usage_events_in "
                    "ON CONFLICT (transaction_id) DO NOTHING RETURNING transaction_id")
        stored = {tx for (tx,) in cur.fetchall()}
    return None if len(stored) == len(events) else stored


def _first_occurrences(events: list[UsageEvent]) -> list[UsageEvent]:
    seen: dict[str, UsageEvent] = {}
    for e in events:
        seen.setdefault(e.transaction_id, e)
    return events if len(seen) == len(events) else list(seen.values())


class _Writer:
    """One batch = one transaction: insert the events, add the stored ones to the rollup."""

    def __init__(self, dbapi, pg: bool):
        self.dbapi, self.pg = dbapi, pg
        self.with_rollup = rollup.has_rollup(dbapi, pg)
        self.catalog = None
        if pg:
            dbapi.commit()  # has_rollup's read opened a transaction

    def write(self, events: list[UsageEvent]) -> int:
        dbapi, pg = self.dbapi, self.pg
        events = _first_occurrences(events)
        micros = [to_micros(e.timestamp) for e in events]
        if not pg:
            dbapi.execute("BEGIN IMMEDIATE")  # the write lock now: max(id) below stays true
        try:
            state = None
            if self.with_rollup:
                rollup.lock(dbapi, pg)
                state = rollup.read_state(dbapi, pg, self.catalog)
                self.catalog = state.catalog
                top = rollup.max_event_id(dbapi)
                if top > state.max_event_id:
                    rollup.roll_up_stored(dbapi, pg, state.catalog, state.max_event_id, top)
            stored = (_insert_postgres if pg else _insert_sqlite)(dbapi, events, micros)
            inserted = len(events) if stored is None else len(stored)
            if state is not None:
                batch = rollup.RollupBatch()
                shape_of = state.catalog.shape_of
                for e, t in zip(events, micros):
                    if stored is None or e.transaction_id in stored:
                        shape, measures = shape_of(e.properties)
                        batch.add(e.customer_id, e.event_type, t, e.transaction_id, shape, measures)
                rollup.write(dbapi, pg, batch, state.catalog)
                rollup.save_state(dbapi, pg, rollup.max_event_id(dbapi), state.catalog.excluded)
        except BaseException:
            self.catalog = None  # it may hold ids of shapes the rollback removes
            if pg:
                dbapi.rollback()
            else:
                dbapi.execute("ROLLBACK")
            raise
        if pg:
            dbapi.commit()
        else:
            dbapi.execute("COMMIT")
        return inserted


def _batches(items: Iterable[UsageEvent | LineError], result: IngestResult, size: int) -> Iterator[list[UsageEvent]]:
    it = iter(items)
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        events = []
        for item in chunk:
            if isinstance(item, LineError):
                result.errors.append(item)
            else:
                events.append(item)
        if events:
            yield events


def ingest(engine: Engine, items: Iterable[UsageEvent | LineError], *, batch: int = BATCH,
           progress: Callable[[int], None] | None = None) -> IngestResult:
    """Insert parsed events (LineErrors are collected, not inserted). Returns counts and errors."""
    result = IngestResult()
    pg = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        if not pg:
            # The unique transaction_id index is written in random order: with SQLite's default
            # 2 MB page cache, ingest slows from 15k to 6k events/s past a million events.
            dbapi.execute("PRAGMA cache_size = -262144")
        writer = _Writer(dbapi, pg)
        with rollup.paused_gc():  # parsing too: the batch's events are live objects the collector re-scans
            for events in _batches(items, result, batch):
                result.read += len(events)
                result.inserted += writer.write(events)
                if progress is not None:
                    progress(len(events))
    finally:
        raw.close()
    return result
