"""A damaged store is refused, not read as new; a store from a newer schema is refused.

Mutations caught:
- Store() without the 0-byte check: SQLite opens an empty file as a new database, `init` starts a
  new lineage over the lost store and `plan` offers to create everything (test_an_empty_store_file...);
- migrations.migrate / access.check_whole without missing_tables: `init` says "already
  initialised" and plan runs on a store without its sub_items (test_a_store_missing_a_table...);
- access.check_whole without the schema refusal, or cli._Group not turning StoreError into one
  line: a newer store is a traceback (test_a_store_from_a_newer_schema...);
- version.TABLES_AT_HEAD drifting from tables.py (test_tables_at_head_are_the_tables_init_makes).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from billing_reconciler.store import Store
from billing_reconciler.store.version import TABLES_AT_HEAD
from tests.conftest import run_cli

COMMANDS = [["init"], ["plan", "--out", "plan.json"], ["apply", "--auto-approve"], ["history"]]


def _state(tree: Path) -> Path:
    return tree / ".billing-reconciler" / "state.db"


def _contents(db: Path) -> bytes | list[str]:
    """What the store holds (its SQL dump: the file's bytes move as SQLite checkpoints its WAL)."""
    if db.stat().st_size == 0:
        return b""
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def _refused_and_untouched(tree: Path, expected: str) -> None:
    db = _state(tree)
    before = _contents(db)
    for args in COMMANDS:
        result = run_cli(*args, cwd=tree)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == "", args
        assert "Plan:" not in result.stdout and "Initialised" not in result.stdout
    assert _contents(db) == before  # nothing written (not even a new lineage)
    assert not (tree / "plan.json").exists()


def test_an_empty_store_file_is_refused_as_damaged_not_read_as_new(example_tree: Path):
    _state(example_tree).parent.mkdir()
    _state(example_tree).write_bytes(b"")
    _refused_and_untouched(example_tree, "is an empty file (0 bytes): a truncated or damaged store, not a new one")
    assert not (example_tree / ".billing-reconciler" / "events.duckdb").exists()


def test_a_store_missing_a_table_is_refused_naming_it(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    with sqlite3.connect(_state(example_tree)) as db:
        db.execute("DROP TABLE sub_items")
        db.execute("DROP TABLE edits")
    _refused_and_untouched(example_tree, "is damaged: its schema is current but it has no table edits, sub_items")


def test_a_store_from_a_newer_schema_is_refused(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    with sqlite3.connect(_state(example_tree)) as db:
        db.execute("UPDATE alembic_version SET version_num = 'v99'")
    _refused_and_untouched(example_tree, "a newer billing-reconciler wrote it; upgrade billing-reconciler")


def test_tables_at_head_are_the_tables_init_makes(tmp_path: Path):
    from billing_reconciler.store import tables

    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.init()
    with sqlite3.connect(tmp_path / "s.db") as db:
        made = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    store.close()
    assert made == TABLES_AT_HEAD == set(tables.SQLModel.metadata.tables) | {"alembic_version"}


@pytest.mark.parametrize("command", [["show"], ["invoices"]])
def test_other_store_commands_refuse_an_empty_store_file(example_tree: Path, command):
    _state(example_tree).parent.mkdir()
    _state(example_tree).write_bytes(b"")
    result = run_cli(*command, cwd=example_tree)
    assert result.returncode == 1 and "is an empty file (0 bytes)" in result.stderr
