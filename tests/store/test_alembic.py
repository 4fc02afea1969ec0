"""The store's schema is Alembic's: the revisions build exactly what tables.py declares, `init` runs
them in its one transaction, and a store this release does not know is refused by its revision."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from billing_reconciler.store import Store, migrations, tables
from billing_reconciler.store.store import NotInitialized, StoreError
from billing_reconciler.store.version import BASELINE, HEAD, LATEST_VERSION, REVISIONS, Schema, read_schema

from .pre_alembic import AFTER_BASELINE_COLUMNS, AFTER_BASELINE_TABLES, RETIRED_TABLES, make_pre_alembic, store_at
from .test_upgrade_v4 import FIXTURE, write_v4_store


def differences(conn, metadata=tables.SQLModel.metadata) -> list:
    """What autogenerate would write to bring the store to `metadata` (tables.py by default)."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def names(diffs: list) -> set[tuple[str, str]]:
    found = set()
    for diff in diffs:
        kind, *rest = diff
        if kind == "add_column":
            found.add((kind, f"{rest[1]}.{rest[2].name}"))
        else:
            found.add((kind, rest[0].name))
    return found


def revision_rows(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def legacy_log(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version FROM schema_migrations ORDER BY version"))]


# --- the revisions --------------------------------------------------------------------------------

def test_the_revisions_are_one_line_from_the_baseline_to_the_head_version_names():
    script = ScriptDirectory.from_config(migrations.alembic_config(None))
    assert script.get_heads() == [HEAD]
    line = [s.revision for s in reversed(list(script.walk_revisions()))]
    assert line == list(REVISIONS) == [f"v{n}" for n in range(4, LATEST_VERSION + 1)]
    assert script.get_revision(BASELINE).down_revision is None
    for before, after in zip(line, line[1:]):
        assert script.get_revision(after).down_revision == before


def test_a_new_store_reaches_the_head_and_autogenerate_finds_nothing_to_do(store_url):
    store = Store(store_url)
    store.init()
    assert revision_rows(store) == [HEAD]
    with store.engine.connect() as conn:
        assert differences(conn) == []
    # A release from before Alembic reads only this log: its newest entry is the schema's number,
    # so that release refuses the store as newer than it.
    assert max(legacy_log(store)) == LATEST_VERSION
    store.close()


def test_the_baseline_differs_from_tables_py_by_exactly_what_v5_to_v7_change(store_url):
    store = Store(store_url)
    with store.engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), BASELINE)
    with store.engine.connect() as conn:
        assert read_schema(conn) == Schema((BASELINE,), 0)
        found = names(differences(conn))
    assert found == {
        ("add_table", "emulator_objects"), ("add_index", "ix_emulator_objects_type"),
        ("add_table", "emulator_state"), ("add_column", "objects.refreshed_revision"),
        ("add_table", "applies"), ("add_column", "edits.op_index"), ("add_column", "objects.protected"),
        ("add_column", "state.digest_key"),
        ("add_column", "objects.moved_from"), ("add_column", "objects.ignore_changes"),
        # v7: the usage tables are gone from tables.py (events live in DuckDB)
        ("remove_table", "usage_events"), ("remove_table", "usage_shapes"), ("remove_table", "usage_rollup"),
        ("remove_table", "usage_rollup_state")}
    # pre_alembic's lists say the same (with the index that comes with a v5 table).
    assert found == ({("add_table", t) for t in AFTER_BASELINE_TABLES} | {("add_index", "ix_emulator_objects_type")}
                     | {("add_column", f"{t}.{c}") for t, c in AFTER_BASELINE_COLUMNS}
                     | {("remove_table", t) for t in RETIRED_TABLES})
    store.close()


def _sqlite_ddl(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'alembic_version'")
        return {re.sub(r"\s+", " ", r[0]).strip() for r in rows}


def test_the_baseline_writes_the_v4_release_s_schema_statement_for_statement(tmp_path):
    # fixtures/v4/schema.sqlite.sql: what `init` of the v4 release (commit 629dffb) created on SQLite.
    released = tmp_path / "released.db"
    with sqlite3.connect(released) as db:
        db.executescript((FIXTURE / "schema.sqlite.sql").read_text())
    store = Store(f"sqlite:///{tmp_path}/baseline.db")
    with store.engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), BASELINE)
    store.close()
    assert _sqlite_ddl(tmp_path / "baseline.db") == _sqlite_ddl(released)
    assert any("WITHOUT ROWID" in s for s in _sqlite_ddl(released))


# --- stores from before Alembic -------------------------------------------------------------------

def test_a_v4_store_is_stamped_at_the_baseline_then_upgraded_and_matches_tables_py(store_url):
    write_v4_store(store_url)
    store = Store(store_url)
    with store.transaction() as conn:
        assert migrations.migrate(conn) == ["v5", "v6", "v7"]
    assert revision_rows(store) == [HEAD]
    assert legacy_log(store) == [1, 2, 3, 4, 5, 6, 7]
    with store.engine.connect() as conn:
        assert differences(conn) == []
    store.close()


def test_a_v1_store_runs_the_old_steps_then_the_revisions_and_matches_tables_py(store_url):
    store, _ = store_at(store_url, BASELINE)
    make_pre_alembic(store, 1)
    with store.transaction() as conn:  # what v2 to v4 added
        conn.execute(text("DROP INDEX ix_edits_serial_address"))
        conn.execute(text("ALTER TABLE usage_events DROP COLUMN ts_epoch"))
        for table in ("usage_rollup", "usage_rollup_state", "usage_shapes"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("CREATE INDEX ix_usage_events_customer_ref ON usage_events (customer_ref)"))
    with store.transaction() as conn:
        assert migrations.migrate(conn) == ["v2", "v3", "v4", "v5", "v6", "v7"]
    assert revision_rows(store) == [HEAD]
    assert legacy_log(store) == [1, 2, 3, 4, 5, 6, 7]
    with store.engine.connect() as conn:
        # Types, columns and indexes; not server defaults: old step v3 gave ts_epoch `DEFAULT 0`.
        assert differences(conn) == []
    store.close()


def test_a_store_of_a_pre_release_build_with_the_hand_rolled_v5_is_stamped_as_it_is(store_url):
    store = Store(store_url)
    lineage, _ = store.init()
    with store.transaction() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(NotInitialized, match="run `billing-reconciler init`"):
        store.snapshot()
    with store.transaction() as conn:
        assert migrations.migrate(conn) == []
    assert revision_rows(store) == [HEAD]
    assert store.snapshot().lineage == lineage
    store.close()


def test_init_is_one_transaction_a_failing_revision_leaves_the_v4_store_as_it_was(store_url, monkeypatch):
    write_v4_store(store_url)
    store = Store(store_url)

    def seed_fails(conn):
        raise RuntimeError("seed failed")

    monkeypatch.setattr("billing_reconciler.emulator.seed.seed_from_store", seed_fails)
    with pytest.raises(RuntimeError, match="seed failed"):
        store.init()
    with store.engine.connect() as conn:
        assert read_schema(conn) == Schema((), 4)
        tables_now = set(inspect(conn).get_table_names())
        columns = {c["name"] for c in inspect(conn).get_columns("objects")}
    assert not tables_now & {"alembic_version", "emulator_objects", "emulator_state"}
    assert "refreshed_revision" not in columns
    monkeypatch.undo()
    assert store.init()[1] is False
    assert revision_rows(store) == [HEAD]
    store.close()


# --- init twice, and stores this release does not know -------------------------------------------

def test_init_twice_changes_nothing(store_url):
    store = Store(store_url)
    store.init()
    with store.engine.connect() as conn:
        before = (revision_rows(store), legacy_log(store), sorted(inspect(conn).get_table_names()))
        schema_cookie = conn.exec_driver_sql("PRAGMA schema_version").scalar() if store.is_sqlite else None
    with store.transaction() as conn:
        assert migrations.migrate(conn) == []
    store.init()
    with store.engine.connect() as conn:
        assert (revision_rows(store), legacy_log(store), sorted(inspect(conn).get_table_names())) == before
        if store.is_sqlite:  # SQLite bumps it on any change of schema
            assert conn.exec_driver_sql("PRAGMA schema_version").scalar() == schema_cookie
    store.close()


@pytest.mark.parametrize("rows", [["3f2a9c1b7d4e"], [HEAD, "v99"]], ids=["foreign-id", "two-heads"])
def test_a_store_at_a_revision_this_release_does_not_have_is_refused_by_name(store_url, rows):
    store = Store(store_url)
    store.init()
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        for row in rows:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": row})
    named = re.escape(", ".join(repr(r) for r in rows))
    with pytest.raises(StoreError, match=f"schema revision {named}, which this release does not know"):
        store.snapshot()
    with pytest.raises(StoreError, match=f"schema revision {named}"):
        store.init()
    assert sorted(revision_rows(store)) == sorted(rows)
    store.close()


def test_a_pre_alembic_log_newer_than_this_release_is_refused():
    assert Schema((), LATEST_VERSION + 1).refusal() == (
        f"the store has schema v{LATEST_VERSION + 1}, newer than this release understands (v{LATEST_VERSION}); "
        "upgrade billing-reconciler to use it")
    assert Schema((), LATEST_VERSION).refusal() is None and not Schema((), LATEST_VERSION).current
    assert Schema((BASELINE,), 0).refusal() is None and Schema((BASELINE,), 0).version == 4
    assert Schema((f"v{LATEST_VERSION + 1}",), 0).refusal() is not None and Schema((HEAD,), 0).current


def test_an_older_revision_is_read_as_needing_init(store_url):
    store = Store(store_url)
    store.init()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": BASELINE})
    with pytest.raises(NotInitialized, match=f"schema v4; run `billing-reconciler init` to upgrade it to v{LATEST_VERSION}"):
        store.snapshot()
    store.close()


# --- what the plan path imports -------------------------------------------------------------------

def test_a_plan_and_init_of_a_store_at_the_head_import_neither_alembic_nor_the_orm(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    Store(url).init()
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from billing_reconciler.service import plan_from_tree\n"
        "from billing_reconciler.store import Store\n"
        f"store = Store({url!r})\n"
        "assert store.init()[1] is False\n"
        f"plan = plan_from_tree(store, Path({str(FIXTURE / 'manifests')!r}))\n"
        "print(json.dumps([len(plan.operations), sorted(m for m in ('alembic', 'sqlmodel') if m in sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}).stdout
    operations, imported = json.loads(out.splitlines()[-1])
    assert operations > 0 and imported == []
