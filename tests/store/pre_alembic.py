"""Stores as earlier releases left them, built by this release's own (frozen) revisions: a store at
schema v6 as release v6's `init` left it (`store_at`), and stores from before Alembic (schema v1 to
v4: a `schema_migrations` log, no `alembic_version`; `make_pre_alembic`)."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import text

from billing_reconciler.store import Store, migrations
from billing_reconciler.store.alembic.versions import v4_baseline
from billing_reconciler.store.version import BASELINE, BASELINE_VERSION

V5_TABLES = ("emulator_objects", "emulator_state")
# What the revisions after the baseline added: tables, then (table, column).
AFTER_BASELINE_TABLES = (*V5_TABLES, "applies")
AFTER_BASELINE_COLUMNS = (("objects", "refreshed_revision"), ("objects", "protected"), ("objects", "moved_from"),
                          ("objects", "ignore_changes"), ("edits", "op_index"), ("state", "digest_key"))
# What they dropped (v7): the usage tables of the releases before the DuckDB events file.
RETIRED_TABLES = ("usage_events", "usage_shapes", "usage_rollup", "usage_rollup_state")


def store_at(url: str, revision: str) -> tuple[Store, str]:
    """(store, lineage): a store as the release whose newest revision was `revision` left it after
    `init`: the revisions up to it, the log rows that release's migrate wrote, its state row."""
    version = int(revision[1:])
    lineage = str(uuid.uuid4())
    store = Store(url)
    with store.transaction() as conn:
        command.upgrade(migrations.alembic_config(conn), revision)
        for number in range(BASELINE_VERSION, version + 1):
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": number, "n": f"alembic revision v{number}", "t": "2026-01-01 00:00:00"})
        key = ", digest_key" if version >= 6 else ""  # revision v6 added it; that release's init filled it
        conn.execute(text(f"INSERT INTO state (id, lineage, serial, created_at, updated_at{key}) VALUES "
                          f"(1, :l, 0, :t, :t{', :k' if key else ''})"),
                     {"l": lineage, "t": "2026-01-01 00:00:00", "k": "ab" * 32})
    return store, lineage


def make_pre_alembic(store: Store, version: int) -> None:
    """Turn a store at the baseline (`store_at(url, BASELINE)`) into the v`version` store a release
    before Alembic would have left: without `alembic_version`, its log ending at `version`. The
    caller undoes whatever its tests need of v2 to v4 (ts_epoch, the rollup tables...)."""
    assert 1 <= version <= 4
    with store.transaction() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == BASELINE
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DELETE FROM schema_migrations"))
        for number in range(1, version + 1):
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": number, "n": f"step {number}", "t": "2026-01-01 00:00:00"})


def take_back_to_v6(store: Store) -> None:
    """Today's store (v7, its rows kept) as release v6 would hold them: the usage tables back as the
    baseline made them (empty), `alembic_version` at v6, the log ending at 6."""
    with store.transaction() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            v4_baseline.create_usage_events_table()
            v4_baseline.create_usage_rollup_tables()
        conn.execute(text("UPDATE alembic_version SET version_num = 'v6'"))
        conn.execute(text("DELETE FROM schema_migrations WHERE version > 6"))
