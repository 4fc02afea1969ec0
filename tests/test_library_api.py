"""The package root is the library the CLI wires: load, plan, apply, show, import, rate."""

from __future__ import annotations

import shutil
from pathlib import Path

import billing_reconciler as br

ROOT = Path(__file__).resolve().parents[1]


def test_the_main_job_through_the_library(tmp_path):
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    store = br.Store(f"sqlite:///{tmp_path}/state.db")
    store.init()
    assert br.load_manifests(tmp_path / "manifests").ok
    plan = br.plan_from_tree(store, tmp_path / "manifests")
    result = br.apply_plan(store, plan, br.EmbeddedBackend())
    assert len(result.applied) == len(plan.operations) > 20
    assert not br.plan_from_tree(store, tmp_path / "manifests").operations
    [shown] = br.show_objects(store, "Customer/widgetsexpress")
    assert shown["api"]["id"] == shown["id"] and shown["api"]["name"] == "WidgetsExpress"
    assert br.import_objects(store) == []  # everything the backend holds is mapped
    assert "widgetsexpress-2024" in br.billing_state(store).contracts
    store.close()
