"""A store lock held by another program is reported as such, naming the holder.

Mutation caught: store._sqlite_lock_message saying "another apply is running" (and no holder)
when the lock is held by a program that is not an apply of ours (sqlite3, a backup tool)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(120)
"""


def test_a_lock_held_by_another_program_names_that_program(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    database = example_tree / ".billing-reconciler" / "state.db"
    script = example_tree / "hold_lock.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), str(database), "--holder-marker"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run_cli("apply", "--auto-approve", "--lock-timeout", "1", cwd=example_tree)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "another program holds the database lock, not a billing-reconciler apply" in result.stderr, result.stderr
    assert f"pid {holder.pid} (" in result.stderr and "--holder-marker" in result.stderr
    assert "another apply is running" not in result.stderr and "Traceback" not in result.stderr
    # Once it is gone, the apply goes through.
    run_cli("apply", "--auto-approve", "--lock-timeout", "5", cwd=example_tree, check=True)
