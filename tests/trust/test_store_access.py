"""Read-only commands change nothing; store URLs as people write them; the password is never printed.

Mutations caught:
- Store(create=False) making the directories or the SQLite file again (read-only commands on a
  missing store leave files behind): test_read_only_commands_on_a_missing_store_create_nothing.
- store.access.open_existing not checking the lineage (plan on an empty database plans creates
  and `plan --out` writes a plan that can never apply): test_..._uninitialised_store.
- urls.normalize not rewriting postgres:// / postgresql:// (SQLAlchemy picks psycopg2, not
  installed): test_postgres_url_spellings_work.
- urls.display/scrub dropped from init or from the "cannot open" messages: the password tests.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli

READ_ONLY = [["plan"], ["plan", "--out", "plan.json"], ["plan", "--format", "json"], ["show"],
             ["show", "Customer/widgetsexpress"], ["history"], ["history", "--format", "json"], ["invoices"],
             ["apply", "--auto-approve"]]


def _tree_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "manifests" not in p.parts}


@pytest.mark.parametrize("args", READ_ONLY)
@pytest.mark.parametrize("store", ["default", "sqlite:///nonexistent/dir/x.db"])
def test_read_only_commands_on_a_missing_store_create_nothing(example_tree: Path, args, store):
    before = _tree_files(example_tree)
    store_args = [] if store == "default" else ["--store", store]
    result = run_cli(*store_args, *args, cwd=example_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "run `billing-reconciler init`" in result.stderr
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _tree_files(example_tree) == before  # no directory, database or plan file
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize("args", READ_ONLY)
def test_read_only_commands_on_an_uninitialised_store_refuse(example_tree: Path, args):
    with sqlite3.connect(example_tree / "empty.db") as db:  # a database without our tables
        db.execute("CREATE TABLE someone_elses (x)")  # (a 0-byte file is a damaged store: test_damaged_stores)
    before = _tree_files(example_tree)
    result = run_cli("--store", "sqlite:///empty.db", *args, cwd=example_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not initialised; run `billing-reconciler init`" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _tree_files(example_tree) <= before | {"empty.db-wal", "empty.db-shm"}
    assert not (example_tree / "plan.json").exists()


def test_validate_and_fmt_never_open_a_store(example_tree: Path):
    # A store URL that cannot even be parsed: any attempt to open it would fail the command.
    for args in (["validate"], ["fmt", "--check"], ["validate", "--format", "json"]):
        result = run_cli("--store", "postgresql+psycopg2://u:hunter2@nowhere:abc/x", *args, cwd=example_tree)
        assert result.returncode == 0, result.stderr
    assert not (example_tree / ".billing-reconciler" / "state.db").exists()


def test_plan_from_ref_needs_no_store(example_tree: Path):
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=example_tree, check=True)
    subprocess.run(["git", "add", "-A"], cwd=example_tree, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=example_tree,
                   check=True)
    result = run_cli("--store", "sqlite:///nonexistent/dir/x.db", "plan", "--from-ref", "HEAD", cwd=example_tree)
    assert result.returncode == 0, result.stderr
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize("url, shown, fix", [
    ("postgresql+psycopg2://billing:hunter2@db.example:5432/billing", "postgresql+psycopg2://billing:***@db.example",
     "write postgresql+psycopg://billing:***@db.example:5432/billing"),
    ("postgresql://billing:hunter2@db.example:port/billing", "postgresql://billing:***@db.example:port/billing",
     "the port 'port' is not a number"),
    ("postgres://billing:hunter2@db.example:99999/billing", "postgres://billing:***@db.example:99999",
     "out of range"),
    ("postgresql://billing:hunt@er2@db/billing?password=hunter2", "postgresql://billing:***@db/billing?password=***",
     "percent-encoded as %40"),
    ("postgresql+psycopg://billing:hunter2@db.example:x/", "postgresql+psycopg://billing:***@db.example:x/",
     "not a number"),
    ("mysql://billing:hunter2@db/billing", "mysql://billing:***@db/billing", "use sqlite:///PATH or"),
    ("state.db", "state.db is not a store URL", "sqlite:///state.db"),
])
@pytest.mark.parametrize("command", [["init"], ["init", "--format", "json"], ["plan"], ["show"], ["invoices"]])
def test_bad_store_urls_are_named_and_corrected_without_the_password(tmp_path: Path, url, shown, fix, command):
    result = run_cli("--store", url, *command, cwd=tmp_path)
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr and "er2@" not in result.stderr
    assert shown in result.stderr and fix in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "sqlalchemy" not in result.stderr.lower()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_url_spellings_work_and_init_hides_the_password(example_tree: Path, postgres_server, scheme):
    name = f"trust_{scheme.replace('+', '_')}"
    postgres_server.create_database(name)
    url = f"{scheme}://postgres:hunter2@{postgres_server.host}:{postgres_server.port}/{name}"
    for fmt in ("text", "json"):
        result = run_cli("--store", url, "init", "--format", fmt, cwd=example_tree, check=True)
        assert "hunter2" not in result.stdout + result.stderr
        assert f"{scheme}://postgres:***@" in result.stdout or "postgresql+psycopg://postgres:***@" in result.stdout
    applied = run_cli("--store", url, "apply", "--auto-approve", cwd=example_tree, check=True)
    assert "hunter2" not in applied.stdout + applied.stderr
    assert run_cli("--store", url, "plan", "--detailed-exitcode", cwd=example_tree).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["plan", "--out", "/nonexistent/dir/plan.json"], "cannot write the plan to /nonexistent/dir/plan.json"),
    (["schemas", "--out", "/proc/no/such"], "cannot write the schemas to /proc/no/such/"),
])
def test_an_unwritable_output_path_is_an_error_not_a_traceback(example_tree: Path, args, message):
    """Mutation caught: the OSError handlers around write_plan / write_schemas removed."""
    run_cli("init", cwd=example_tree, check=True)
    result = run_cli(*args, cwd=example_tree)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
