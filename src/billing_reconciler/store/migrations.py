"""Schema migrations: an older store is upgraded in place, never recreated. Run by `Store.init`, in
its transaction under the store lock.

Alembic runs them, configured here in code: the environment and the revisions are package data in
`store/alembic/` (v4, the baseline, then one revision per change; ids in store.version). A new
store is built by the revisions from nothing. A store written before Alembic (no
`alembic_version`, a `schema_migrations` log) is first brought to v4 by the hand-rolled steps that
release had, then stamped at the baseline it now matches, then upgraded like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ..timeutil import utc_now
from .store import StoreDamaged, StoreError, damaged_tables_message
from .version import BASELINE_VERSION, HEAD, REVISIONS, missing_tables, read_schema, revision_id

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPTS = resources.files(__package__) / "alembic"


def alembic_config(conn: Connection, *, on_version_apply: Callable[..., None] | None = None,
                   autogenerate: bool = False, events_moved: bool = False) -> Config:
    """Alembic's configuration for the store, running in `conn` (and its transaction).
    `autogenerate`: compare with the tables declared in tables.py (imports the ORM layer).
    `events_moved`: the rows of the store's `usage_events` are in the events file (revision v7)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    config.attributes["on_version_apply"] = on_version_apply
    config.attributes["events_moved"] = events_moved
    if autogenerate:
        from . import tables

        config.attributes["target_metadata"] = tables.SQLModel.metadata
    return config


def migrate(conn: Connection, *, events_moved: bool = False) -> list[str]:
    """Bring the store to the newest schema; returns what ran (`v2`..`v4`: steps from before
    Alembic; `v4`, `v5`, ...: revisions), [] when it was there already.

    `events_moved`: the caller has moved every row of the store's `usage_events` into the events
    file, in this transaction (`events.move.move_before_upgrade`); without it revision v7 refuses
    to drop a table that holds events (StoreError, nothing changed)."""
    schema = read_schema(conn)
    refusal = schema.refusal()
    if refusal:
        raise StoreError(refusal)
    if schema.current:
        missing = missing_tables(conn)
        if missing:  # "already initialised" would hide it; re-creating them would hide it too
            raise StoreDamaged(damaged_tables_message(str(conn.engine.url), missing))
        # Alembic is imported only when there is something to migrate: it costs ~130 ms to
        # import here, and `init` of a store at the head takes ~6 ms in a fresh process (the
        # hand-rolled path imported sqlmodel, ~150 ms: ~300 ms in all on this machine).
        return []
    from alembic import command

    applied: list[str] = []
    if not schema.revisions and schema.legacy:
        applied += _legacy_upgrade(conn, schema.legacy)
        # What the steps left is the baseline, or v5 for a store written by a pre-release
        # build of this one that ran the hand-rolled v5 (the same tables as revision v5).
        command.stamp(alembic_config(conn), revision_id(max(schema.legacy, BASELINE_VERSION)))

    def record(step: Any, **_: Any) -> None:
        if not step.is_stamp and step.is_upgrade:
            applied.append(step.up_revision_id)

    command.upgrade(alembic_config(conn, on_version_apply=record, events_moved=events_moved), HEAD)
    _log_for_older_releases(conn)
    return applied


def _log_for_older_releases(conn: Connection) -> None:
    # Releases from before Alembic read only schema_migrations: its newest row says this schema's
    # number, so they refuse the store ("newer than this release") rather than misread it.
    logged = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
    for number, revision in enumerate(REVISIONS, start=BASELINE_VERSION):
        if number not in logged:
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": number, "n": f"alembic revision {revision}", "t": utc_now()})


# --- before Alembic ------------------------------------------------------------------------------
# The steps of the hand-rolled migrations, for stores at v1 to v3 (v1 made the tables; a store
# without schema_migrations is new and built by the revisions). Each keeps its pre-Alembic form.

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
    # Rating read usage pre-aggregated at ingest; stores from before got the rollup tables (and
    # had their events rolled up: the rollup is retired, so nothing is rolled up now and revision
    # v7 drops the tables again). The customer_ref index goes: nothing reads events by customer,
    # and it cost ingest a third of its insert time.
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from .alembic.versions import v4_baseline

    if not inspect(conn).has_table("usage_rollup"):
        with Operations.context(MigrationContext.configure(conn)):
            v4_baseline.create_usage_rollup_tables()  # the tables as the baseline has them
    conn.execute(text("DROP INDEX IF EXISTS ix_usage_events_customer_ref"))


LEGACY_STEPS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "index edits by serial and address", _v2_edits_index),
    (3, "usage_events.ts_epoch", _v3_usage_events_ts_epoch),
    (4, "usage rollup", _v4_usage_rollup),
]
assert LEGACY_STEPS[-1][0] == BASELINE_VERSION  # they end where the baseline starts


def _legacy_upgrade(conn: Connection, version: int) -> list[str]:
    applied = []
    for number, name, step in LEGACY_STEPS:
        if number <= version:
            continue
        step(conn)
        conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                     {"v": number, "n": name, "t": utc_now()})
        applied.append(revision_id(number))
    return applied
