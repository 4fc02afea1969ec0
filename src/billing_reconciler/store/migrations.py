"""Versioned schema migrations: an older store is upgraded in place, never recreated.

Each migration is (version, name, function(connection)). Version 1 creates the tables as first
released; later versions alter them. `schema_migrations` records what has run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from ..timeutil import utc_now
from .store import StoreError
from .version import LATEST_VERSION, current_version

Migration = tuple[int, str, Callable[[Connection], None]]


def _v1_create_tables(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)


def _v2_edits_index(conn: Connection) -> None:
    # `history ADDRESS` reads one object's edits, newest first.
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_edits_serial_address ON edits (serial, address)"))


def _v3_usage_events_ts_epoch(conn: Connection) -> None:
    # Rating buckets events by integer microseconds in SQL; stores from before this column get it
    # added and filled from the timestamp they already hold.
    columns = {c["name"] for c in inspect(conn).get_columns("usage_events")}
    if "ts_epoch" in columns:
        return
    conn.execute(text("ALTER TABLE usage_events ADD COLUMN ts_epoch BIGINT NOT NULL DEFAULT 0"))
    rows = conn.execute(text("SELECT id, timestamp FROM usage_events")).all()
    for row_id, stamp in rows:
        if isinstance(stamp, str):
            stamp = datetime.fromisoformat(stamp)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        micros = (stamp - EPOCH) // timedelta(microseconds=1)
        conn.execute(text("UPDATE usage_events SET ts_epoch = :t WHERE id = :i"), {"t": micros, "i": row_id})


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _v4_usage_rollup(conn: Connection) -> None:
    # Rating reads usage pre-aggregated at ingest (events.rollup); stores from before get the
    # tables and have their events rolled up now. The customer_ref index goes: nothing reads
    # events by customer any more, and it cost ingest a third of its insert time.
    from ..events import rollup

    for name in ("usage_shapes", "usage_rollup", "usage_rollup_state"):
        SQLModel.metadata.tables[name].create(conn, checkfirst=True)
    conn.execute(text("DROP INDEX IF EXISTS ix_usage_events_customer_ref"))
    dbapi = conn.connection.driver_connection
    pg = conn.dialect.name == "postgresql"
    state = rollup.read_state(dbapi, pg)
    top = rollup.max_event_id(dbapi)
    if top > state.max_event_id:
        rollup.roll_up_stored(dbapi, pg, state.catalog, state.max_event_id, top)
    rollup.save_state(dbapi, pg, top, state.catalog.excluded)


def _v5_emulator(conn: Connection) -> None:
    # The embedded backend becomes a Metronome emulator with its own tables; objects remember
    # the emulator revision they were last read at. A store written before is seeded: every
    # object it holds is rebuilt in the emulator under the same ids, so the next plan is empty.
    columns = {c["name"] for c in inspect(conn).get_columns("objects")}
    if "refreshed_revision" not in columns:
        conn.execute(text("ALTER TABLE objects ADD COLUMN refreshed_revision BIGINT"))
    for name in ("emulator_objects", "emulator_state"):
        SQLModel.metadata.tables[name].create(conn, checkfirst=True)
    from ..emulator.seed import seed_from_store

    seed_from_store(conn)


MIGRATIONS: list[Migration] = [
    (1, "create tables", _v1_create_tables),
    (2, "index edits by serial and address", _v2_edits_index),
    (3, "usage_events.ts_epoch", _v3_usage_events_ts_epoch),
    (4, "usage rollup", _v4_usage_rollup),
    (5, "Metronome emulator tables", _v5_emulator),
]


def migrate(conn: Connection) -> list[int]:
    """Run every migration newer than the store; returns the versions applied."""
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise StoreError(f"the store has schema v{version}, newer than this release understands "
                         f"(v{LATEST_VERSION}); upgrade billing-reconciler to use it")
    applied = []
    if version == 0:
        SQLModel.metadata.tables["schema_migrations"].create(conn, checkfirst=True)
    for number, name, step in MIGRATIONS:
        if number <= version:
            continue
        step(conn)
        conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                     {"v": number, "n": name, "t": utc_now()})
        applied.append(number)
    return applied


assert MIGRATIONS[-1][0] == LATEST_VERSION
