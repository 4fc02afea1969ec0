"""Stores as releases from before Alembic left them (schema v1 to v4: a `schema_migrations` log,
no `alembic_version`), made from a store `init` built with the revisions."""

from __future__ import annotations

from sqlalchemy import text

from billing_reconciler.store import Store

V5_TABLES = ("emulator_objects", "emulator_state")
# What the revisions after the baseline added: tables, then (table, column).
AFTER_BASELINE_TABLES = (*V5_TABLES, "applies")
AFTER_BASELINE_COLUMNS = (("objects", "refreshed_revision"), ("objects", "protected"), ("objects", "moved_from"),
                          ("objects", "ignore_changes"), ("edits", "op_index"), ("state", "digest_key"))


def drop_after_baseline(conn) -> None:
    """Take today's schema back to the baseline's (v4) tables and columns."""
    for table in AFTER_BASELINE_TABLES:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    for table, column in AFTER_BASELINE_COLUMNS:
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))


def make_pre_alembic(store: Store, version: int) -> None:
    """Turn a store at v5 into the v`version` store a release before Alembic would have left:
    without what revision v5 added, without `alembic_version`, its log ending at `version`.
    The caller undoes whatever its tests need of v2 to v4 (ts_epoch, the rollup tables...)."""
    assert 1 <= version <= 4
    with store.transaction() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        drop_after_baseline(conn)
        conn.execute(text("DELETE FROM schema_migrations"))
        for number in range(1, version + 1):
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": number, "n": f"step {number}", "t": "2026-01-01 00:00:00"})
