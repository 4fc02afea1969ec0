"""Remote applies under faults: the example account applied through the metronome backend to the
emulator's app behind fault-injecting middleware (tests/remote/faults.py), re-planned and
re-applied until the plan is empty. Each ends with every object exactly once in the account and
the store's journal telling what happened.

The example account (manifests/, counted by hand): 4 billable metrics, 8 products, 2 rate cards,
4 customers with one billing provider configuration each, 4 contracts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_reconciler.apply.applier import apply_plan
from billing_reconciler.apply.backends import BackendError
from billing_reconciler.apply.backends.metronome import MetronomeBackend, RetryPolicy
from billing_reconciler.apply.journal import RemoteApplyError
from billing_reconciler.service import plan_from_tree
from billing_reconciler.store.store import Store

from ..conftest import EXAMPLE_MANIFESTS, cli_command, run_cli
from ..http_emulator import new_token, serve_in_thread, served_app
from .faults import Faults

EXPECTED = {"BillableMetric": 4, "Product": 8, "RateCard": 2, "Customer": 4, "Contract": 4}
TIMEOUT = 0.5  # the client's; faults hold lost and slow responses for 1.2 s


def _account_counts(backend: MetronomeBackend) -> tuple[Counter, Counter]:
    """Live objects per kind, and live billing provider configurations per customer name."""
    session = backend.session(None)
    counts: Counter = Counter()
    configs: Counter = Counter()
    for kind in EXPECTED:
        for obj in session.list(kind):
            if obj.get("archived_at") is None:
                counts[kind] += 1
                if kind == "Customer":
                    configs[obj["name"]] = len([c for c in obj.get("customer_billing_provider_configurations") or []
                                                if c.get("archived_at") is None])
    return counts, configs


def _converge(store: Store, backend: MetronomeBackend, manifests: Path, rounds: int = 12) -> list[str]:
    """Plan and apply until the plan is empty; the failures met on the way."""
    failures = []
    for _ in range(rounds):
        try:
            plan = plan_from_tree(store, manifests, backend=backend)
            if not plan.operations:
                return failures
            apply_plan(store, plan, backend, actor="fault-test")
        except (RemoteApplyError, BackendError) as exc:
            failures.append(str(exc).splitlines()[0])
    raise AssertionError(f"no empty plan after {rounds} rounds: {failures}")


def _journal(store: Store) -> tuple[list[str], Counter]:
    with store.reading() as conn:
        statuses = [r[0] for r in conn.execute(text("SELECT status FROM applies ORDER BY serial"))]
        outcomes = Counter()
        for (response,) in conn.execute(text("SELECT response FROM edits")):
            body = json.loads(response)
            outcomes[body.get("outcome", "ok") if isinstance(body, dict) else "ok"] += 1
    return statuses, outcomes


@pytest.mark.parametrize("seed, faults", [
    (1, {"throttle": 0.15, "error": 0.15}),  # 429 (retried after Retry-After) and 500 on any request
    (2, {"lost": 0.2, "writes_only": True}),  # committed by the server, answer never arrives
    (3, {"slow": 0.2, "writes_only": True}),  # the server is slower than the client's timeout
])
def test_faults_end_with_every_object_once(tmp_path: Path, seed: int, faults: dict):
    # Mutations caught: re-sending a create after a lost answer (duplicate customer/product), a
    # resumed apply that does not match what a lost create made (second object on the re-apply),
    # no uniqueness key on contract create/edit (duplicate contract or items on retry).
    token = new_token()
    app = served_app(tmp_path / "data", token)
    injected = Faults(seed=seed, hold=1.2, **faults)
    manifests = tmp_path / "manifests"
    shutil.copytree(EXAMPLE_MANIFESTS, manifests)
    store = Store(f"sqlite:///{tmp_path}/state.db")
    store.init()
    try:
        with serve_in_thread(injected.wrap(app)) as base_url:
            backend = MetronomeBackend(base_url=base_url, token=token, timeout=TIMEOUT,
                                       retry=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05))
            backend.parallelism = 1  # requests in a fixed order: the seed decides which ones fail
            failures = _converge(store, backend, manifests)
            injected.enabled = False
            counts, configs = _account_counts(backend)
            assert counts == EXPECTED, (counts, failures, injected.seen)
            assert set(configs.values()) == {1}, configs
            statuses, outcomes = _journal(store)
    finally:
        store.close()
        app.state.emulator.close()
    assert sum(injected.seen.values()) > 0  # the seed did inject faults
    assert statuses[-1] == "complete"
    # Each stopped apply is marked incomplete and its journal row settled, never left "sent".
    assert statuses.count("incomplete") == len([f for f in failures if f.startswith("apply ")])
    assert outcomes["sent"] == 0 and outcomes["unknown"] == 0


def test_sigkill_of_the_apply_at_random_points(tmp_path: Path):
    # Mutations caught: journal rows committed only at the end (a killed apply's creates would be
    # made again), a 'running' apply never settled, pending creates not matched on refresh.
    import random

    rng = random.Random(11)
    token = new_token()
    app = served_app(tmp_path / "data", token)
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    victim: dict = {}
    injected = Faults(seed=11, hold=0.2, on_kill=lambda: os.kill(victim["pid"], signal.SIGKILL))
    store_url = f"sqlite:///{tmp_path}/state.db"
    try:
        with serve_in_thread(injected.wrap(app)) as base_url:
            env = {"BILLING_RECONCILER_BACKEND": "metronome", "METRONOME_BASE_URL": base_url,
                   "METRONOME_BEARER_TOKEN": token, "BILLING_RECONCILER_STORE": store_url, "NO_COLOR": "1",
                   "BILLING_RECONCILER_PARALLELISM": "1"}  # requests in a fixed order: the seed decides
            assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
            kills = 0
            for _ in range(2):  # two applies, each killed at a random request
                injected.requests = 0
                injected.kill_at = rng.randint(15, 60)
                process = subprocess.Popen([*cli_command(), "apply", "--auto-approve"], cwd=tmp_path,
                                           env={**os.environ, **env}, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
                victim["pid"] = process.pid
                process.communicate(timeout=300)
                kills += process.returncode == -signal.SIGKILL
            injected.kill_at = None
            final = run_cli("apply", "--auto-approve", cwd=tmp_path, env=env)
            assert final.returncode == 0, final.stdout + final.stderr
            again = run_cli("plan", "--detailed-exitcode", cwd=tmp_path, env=env)
            assert again.returncode == 0, again.stdout + again.stderr
            injected.enabled = False
            backend = MetronomeBackend(base_url=base_url, token=token)
            counts, configs = _account_counts(backend)
    finally:
        app.state.emulator.close()
    assert kills >= 1
    assert counts == EXPECTED, counts
    assert set(configs.values()) == {1}, configs
    store = Store(store_url)
    try:
        statuses, outcomes = _journal(store)
    finally:
        store.close()
    # Killed applies are marked incomplete (by the next refresh); none is left 'running'.
    assert "incomplete" in statuses and "running" not in statuses
    assert outcomes["sent"] == 0
