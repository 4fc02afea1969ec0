"""Two applies against a store whose lock is held: one gives up, one waits; the store stays consistent.

The lock holder is a helper process (tests/lock_holder.py) that takes the store lock the way
`apply` does and says so on a pipe, then holds it until the test lets go: no sleeps and no race
with a big apply that might finish too soon. Meanwhile an apply with a short --lock-timeout fails
naming the holder and when it started; an apply with a long one is still waiting when the holder
lets go, and then applies. A plan made before that apply is then refused as stale. Both on SQLite
and PostgreSQL. Every failure message carries the children's stderr.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

SMALL = """apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: extra}
spec: {name: Extra, type: FIXED}
"""
SIGNAL_TIMEOUT = 120  # seconds to wait for the holder's "locked" line (not a sleep: a select)


def _start(command: list[str], cwd: Path, env: dict[str, str], **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "NO_COLOR": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _cli() -> list[str]:
    return [str(Path(sys.executable).with_name("billing-reconciler"))]


def _read_line(process: subprocess.Popen[str], what: str) -> str:
    ready, _, _ = select.select([process.stdout], [], [], SIGNAL_TIMEOUT)
    if not ready:
        process.kill()
        raise AssertionError(f"no {what!r} within {SIGNAL_TIMEOUT}s; stderr:\n{process.communicate()[1]}")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"the process ended before {what!r}: exit {process.wait()}, stderr:\n"
                             f"{process.stderr.read()}")
    return line.strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/state.db"
    return request.getfixturevalue("postgres_url")


def test_while_the_lock_is_held_one_apply_gives_up_and_one_waits_then_applies(tmp_path: Path, store_url: str):
    tree = tmp_path / "tree"
    (tree / "manifests").mkdir(parents=True)
    (tree / "manifests" / "extra.yaml").write_text(SMALL)
    env = {"BILLING_RECONCILER_STORE": store_url}
    run_cli("init", cwd=tree, env=env, check=True)
    # Both plans are made now, at serial 0.
    run_cli("plan", "--out", "impatient.json", cwd=tree, env=env, check=True)
    run_cli("plan", "--out", "patient.json", cwd=tree, env=env, check=True)

    holder = _start([sys.executable, str(ROOT / "tests" / "lock_holder.py"), store_url], tree, env,
                    stdin=subprocess.PIPE)
    patient = None
    try:
        assert _read_line(holder, "locked") == "locked"
        locked_at = datetime.now(timezone.utc)

        patient = _start([*_cli(), "apply", "patient.json", "--lock-timeout", "300"], tree,
                         {**env, "BILLING_RECONCILER_ACTOR": "patient"})
        started = time.monotonic()
        impatient = run_cli("apply", "impatient.json", "--lock-timeout", "1", cwd=tree,
                            env={**env, "BILLING_RECONCILER_ACTOR": "impatient"})
        waited = time.monotonic() - started

        # The impatient one gave up after its --lock-timeout, saying who holds the lock since when.
        message = impatient.stderr
        assert impatient.returncode == 1, f"exit {impatient.returncode}\n{impatient.stdout}\n{message}"
        assert "Error: could not take the store lock within 1s: another apply is running" in message, message
        since = re.search(r"since (\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)", message)
        assert since, message
        holder_start = datetime.fromisoformat(since.group(1).replace("Z", "+00:00"))
        if holder_start.tzinfo is None:
            holder_start = holder_start.replace(tzinfo=timezone.utc)
        assert abs((holder_start - locked_at).total_seconds()) < 60, message
        assert "Wait for it to finish, or raise --lock-timeout." in message
        assert 1 <= waited < 60, waited

        # The lock is still held (the holder waits for us), so the patient one cannot have finished.
        if patient.poll() is not None:
            out, err = patient.communicate()
            raise AssertionError(f"the patient apply did not wait: exit {patient.returncode}\n{out}\n{err}")
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
    assert _read_line(holder, "released") == "released"
    assert holder.wait(timeout=60) == 0, holder.stderr.read()

    out, err = patient.communicate(timeout=600)
    assert patient.returncode == 0, f"the patient apply failed after the lock was released:\n{out}\n{err}"
    assert "Apply complete: 1 operation(s) applied; store serial is now 1." in out, out + err

    # A plan made before that apply is stale now.
    stale = run_cli("apply", "impatient.json", cwd=tree, env=env)
    assert stale.returncode == 1
    assert "stale" in stale.stderr and "made at store serial 0" in stale.stderr and "now at serial 1" in stale.stderr

    shown = json.loads(run_cli("show", "--format", "json", cwd=tree, env=env, check=True).stdout)
    assert shown["store"]["serial"] == 1
    assert [o["address"] for o in shown["objects"]].count("Product/extra") == 1
    history = json.loads(run_cli("history", "--format", "json", cwd=tree, env=env, check=True).stdout)["edits"]
    assert [(e["serial"], e["actor"]) for e in history] == [(1, "patient")]
    assert run_cli("plan", "--detailed-exitcode", cwd=tree, env=env).returncode == 0
