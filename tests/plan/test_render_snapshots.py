"""Snapshots of the text and markdown views of one representative plan (every kind of change).

Ids are reproducible (CountingBackend), so the views are byte-stable. After an intended change
to a view: `pytest tests/plan/test_render_snapshots.py --snapshot-update`, and review the diff of
tests/plan/__snapshots__/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_reconciler.plan.render import render
from billing_reconciler.store.store import Store

from .support import Account, CountingBackend, apply, catalog, contract, credit, customer, make_plan


@pytest.fixture
def representative_plan(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path}/state.db")
    store.init()
    account = Account(tmp_path, catalog() + [
        customer("acme", configs=("aws", "stripe")), contract("acme-2024", "acme", credits=("welcome",)),
        customer("bolt"), contract("bolt-2024", "bolt"),
        customer("gone"), contract("gone-2024", "gone")])
    apply(store, make_plan(store, account), CountingBackend())

    acme = account.spec("Contract/acme-2024")
    acme["overrides"][0]["multiplier"] = 0.9                      # -/+ override
    del acme["commits"]                                           # archive a commit
    acme["credits"].append(credit("goodwill", 2500))              # add a credit
    acme["usage_filter"] = {"group_key": "region", "group_values": ["US", "EU"],
                            "starting_at": "2025-01-01T00:00:00Z"}  # set_usage_filter
    account.spec("Customer/acme")["customer_billing_provider_configurations"].pop()  # archive stripe
    account.spec("Customer/bolt")["name"] = "Bolt Industries"    # rename
    account.spec("Product/platform-fee")["name"] = "Platform charge"  # versioned product update
    account.remove("Customer/gone", "Contract/gone-2024")         # pruned
    account.add(customer("new"), contract("new-2025", "new"))      # created, with placeholders
    plan = make_plan(store, account, prune=True)
    store.close()
    assert not plan.errored
    return plan


def test_text_view(representative_plan, snapshot):
    assert render(representative_plan, "text") == snapshot


def test_markdown_view(representative_plan, snapshot):
    assert render(representative_plan, "markdown") == snapshot


def test_views_are_stable(representative_plan):
    for fmt in ("text", "markdown", "json"):
        assert render(representative_plan, fmt) == render(representative_plan, fmt)
