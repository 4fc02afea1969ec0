"""SIGKILL in the middle of a large apply leaves the store exactly as before; the next apply works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT, run_cli, store_lock_held


def _generate(tmp_path: Path, customers: int) -> Path:
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_account.py"), "--customers", str(customers),
                    "--out", str(tmp_path / "manifests")], check=True, capture_output=True)
    return tmp_path


def _kill_apply_midway(tree: Path, env: dict[str, str], store_url: str) -> None:
    """Start `apply --auto-approve`, wait until it holds the store lock and is well into its
    operations, and SIGKILL it."""
    exe = Path(sys.executable).with_name("billing-reconciler")
    proc = subprocess.Popen([str(exe), "apply", "--auto-approve"], cwd=tree,
                            env={**os.environ, **env, "NO_COLOR": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not store_lock_held(store_url):
        assert proc.poll() is None, f"apply ended before it could be killed: {proc.stderr.read()!r}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # well into the operations
    assert proc.poll() is None, "apply finished before it could be killed; make the account larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


def test_sigkill_during_apply_leaves_the_store_unchanged(tmp_path: Path, store_url: str):
    tree = _generate(tmp_path, 1500)
    env = {"BILLING_RECONCILER_STORE": store_url}
    assert run_cli("init", cwd=tree, env=env).returncode == 0
    before = json.loads(run_cli("show", "--format", "json", cwd=tree, env=env).stdout)

    _kill_apply_midway(tree, env, store_url)

    after = json.loads(run_cli("show", "--format", "json", cwd=tree, env=env).stdout)
    assert after == before  # same lineage, serial 0, no objects
    assert run_cli("history", "--format", "json", cwd=tree, env=env).stdout.count('"op"') == 0

    retry = run_cli("apply", "--auto-approve", "--lock-timeout", "30", cwd=tree, env=env)
    assert retry.returncode == 0, retry.stderr
    final = json.loads(run_cli("show", "--format", "json", cwd=tree, env=env).stdout)
    assert final["store"]["serial"] == 1
    assert len(final["objects"]) > 3000
    assert run_cli("plan", "--detailed-exitcode", cwd=tree, env=env).returncode == 0


def _emulator_rows(store_url: str) -> list[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT id, type, revision, archived, body FROM emulator_objects ORDER BY id"))]
    finally:
        engine.dispose()


def test_sigkill_during_an_update_apply_leaves_the_emulators_objects_unchanged(tmp_path: Path, store_url: str):
    """The emulator's objects live in the store's transaction: a killed apply of edits to objects
    that exist leaves every one of them (body and revision) exactly as before."""
    tree = _generate(tmp_path, 1500)
    env = {"BILLING_RECONCILER_STORE": store_url}
    assert run_cli("init", cwd=tree, env=env).returncode == 0
    assert run_cli("apply", "--auto-approve", cwd=tree, env=env).returncode == 0
    for path in (tree / "manifests").rglob("*.yaml"):  # every contract's override changes: -/+ each
        path.write_text(path.read_text().replace("multiplier: 0.95", "multiplier: 0.9"))
    rows = _emulator_rows(store_url)
    assert len(rows) > 3000

    _kill_apply_midway(tree, env, store_url)

    assert _emulator_rows(store_url) == rows
    plan = run_cli("plan", "--detailed-exitcode", cwd=tree, env=env)
    assert plan.returncode == 2 and "1500 to update" in plan.stdout, plan.stdout[-500:]
    assert run_cli("apply", "--auto-approve", cwd=tree, env=env).returncode == 0
    assert run_cli("plan", "--detailed-exitcode", cwd=tree, env=env).returncode == 0
