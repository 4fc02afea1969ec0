"""Stores as releases from before Alembic left them (schema v1 to v4: a `schema_migrations` log,
no `alembic_version`), made from a store `init` built with the revisions."""

from __future__ import annotations

from sqlalchemy import text

from billing_reconciler.store import Store

V5_TABLES = ("emulator_objects", "emulator_state")


def make_pre_alembic(store: Store, version: int) -> None:
    """Turn a store at v5 into the v`version` store a release before Alembic would have left:
    without what revision v5 added, without `alembic_version`, its log ending at `version`.
    The caller undoes whatever its tests need of v2 to v4 (ts_epoch, the rollup tables...)."""
    assert 1 <= version <= 4
    with store.transaction() as conn:
        for table in ("alembic_version", *V5_TABLES):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("ALTER TABLE objects DROP COLUMN refreshed_revision"))
        conn.execute(text("DELETE FROM schema_migrations"))
        for number in range(1, version + 1):
            conn.execute(text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                         {"v": number, "n": f"step {number}", "t": "2026-01-01 00:00:00"})
