"""Two applies against one store at once: one holds the store lock, the others wait or give up.

A big apply (thousands of operations, one transaction) takes the lock. Meanwhile an apply with
a short --lock-timeout fails with an error naming when the holder started; an apply with a long
one waits until the first commits, and is then refused because its plan is stale. The store
ends consistent: serial advanced once per successful apply, every object once. Both on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, store_lock_held

CUSTOMERS = 4000
SMALL = """apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: extra}
spec: {name: Extra, type: FIXED}
"""


def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("billing-reconciler")
    return subprocess.Popen([str(exe), *args], cwd=cwd, env={**os.environ, **env, "NO_COLOR": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/state.db"
    return request.getfixturevalue("postgres_url")


def test_concurrent_applies_wait_time_out_and_leave_the_store_consistent(tmp_path: Path, store_url: str):
    big = tmp_path / "big"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_account.py"), "--customers", str(CUSTOMERS),
                    "--out", str(big / "manifests")], check=True, capture_output=True)
    small = tmp_path / "small"
    (small / "manifests").mkdir(parents=True)
    (small / "manifests" / "extra.yaml").write_text(SMALL)
    env = {"BILLING_RECONCILER_STORE": store_url, "BILLING_RECONCILER_ACTOR": "first-apply"}
    run_cli("init", cwd=big, env=env, check=True)
    # Every plan is made now, at serial 0; the small ones load in no time, so they reach the lock
    # while the big apply holds it.
    run_cli("plan", "--out", "big.json", cwd=big, env=env, check=True)
    run_cli("plan", "--out", "impatient.json", cwd=small, env=env, check=True)
    run_cli("plan", "--out", "patient.json", cwd=small, env=env, check=True)
    operations = len(json.loads((big / "big.json").read_text())["operations"])

    first = _start(["apply", "big.json"], big, env)
    deadline = time.monotonic() + 120
    while not store_lock_held(store_url):
        assert first.poll() is None, f"the big apply ended before it took the lock: {first.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    locked_at = datetime.now(timezone.utc)

    patient = _start(["apply", "patient.json", "--lock-timeout", "300"], small, {**env, "BILLING_RECONCILER_ACTOR": "p"})
    started = time.monotonic()
    impatient = run_cli("apply", "impatient.json", "--lock-timeout", "1", cwd=small,
                        env={**env, "BILLING_RECONCILER_ACTOR": "i"})
    waited = time.monotonic() - started
    assert first.poll() is None, "the big apply finished too soon to test the lock; raise CUSTOMERS"
    assert patient.poll() is None, "the patient apply did not wait"

    # The impatient one gave up after its --lock-timeout, saying who holds the lock since when.
    assert impatient.returncode == 1
    message = impatient.stderr
    assert "Error: could not take the store lock within 1s: another apply is running" in message, message
    since = re.search(r"since (\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?)", message)
    assert since, message
    holder_start = datetime.fromisoformat(since.group(1).replace("Z", "+00:00"))
    if holder_start.tzinfo is None:
        holder_start = holder_start.replace(tzinfo=timezone.utc)
    assert abs((holder_start - locked_at).total_seconds()) < 60
    assert "Wait for it to finish, or raise --lock-timeout." in message
    assert 1 <= waited < 60

    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert f"Apply complete: {operations} operation(s) applied; store serial is now 1." in out
    # The patient one got the lock only after the big apply committed: its plan is stale now.
    out, err = patient.communicate(timeout=600)
    assert patient.returncode == 1
    assert "stale" in err and "made at store serial 0" in err and "now at serial 1" in err, err

    shown = json.loads(run_cli("show", "--format", "json", cwd=big, env=env, check=True).stdout)
    assert shown["store"]["serial"] == 1
    addresses = [o["address"] for o in shown["objects"]]
    assert len(addresses) == len(set(addresses))
    assert "Product/extra" not in addresses
    history = json.loads(run_cli("history", "--format", "json", cwd=big, env=env, check=True).stdout)["edits"]
    assert len(history) == operations and {e["serial"] for e in history} == {1}
    assert {e["actor"] for e in history} == {"first-apply"}
    assert run_cli("plan", "--detailed-exitcode", cwd=big, env=env).returncode == 0

    # A plan made now applies, and advances the serial once more.
    run_cli("plan", "--out", "again.json", cwd=small, env=env, check=True)
    assert run_cli("apply", "again.json", cwd=small, env=env).returncode == 0
    shown = json.loads(run_cli("show", "--format", "json", cwd=big, env=env, check=True).stdout)
    assert shown["store"]["serial"] == 2
    assert [o["address"] for o in shown["objects"]].count("Product/extra") == 1
