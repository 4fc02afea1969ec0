"""`plan --usage` rates what the backend would hold after the plan: the plan's requests executed on
the emulator in a transaction that is rolled back. `--from-manifests` and `--from-ref --usage`
apply manifests to a throw-away emulator. Every path reads objects through the same readers."""

from __future__ import annotations

from billing_reconciler.rating.state import UsageFilterPeriod
from billing_reconciler.service import billing_state, manifests_state, plan_state, revision_states

from ..plan.support import START, Account, converge, make_plan, small_account
from ..plan.support import store, store_url  # noqa: F401 - fixtures
from .test_drift import emulator_rows

LATER = "2024-11-15T00:00:00Z"


def test_plan_state_is_what_the_emulator_would_hold_and_nothing_is_kept(store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    account.spec("Contract/c1-2024")["usage_filter"] = {"group_key": "region", "group_values": ["US", "EU"],
                                                        "starting_at": LATER}
    account.spec("Customer/c1")["name"] = "Renamed"
    plan = make_plan(store, account)
    rows, state = emulator_rows(store), store.state()

    before, after = billing_state(store), plan_state(store, plan)
    # set_usage_filter appends: the US-only filter still routes usage before the new one starts
    # (the manifest alone says only "US, EU from the 15th").
    assert before.usage_filters["c1-2024"] == [UsageFilterPeriod("region", frozenset({"US"}), START)]
    assert after.usage_filters["c1-2024"] == [UsageFilterPeriod("region", frozenset({"US"}), START),
                                              UsageFilterPeriod("region", frozenset({"US", "EU"}), LATER)]
    assert before.customers["c1"]["name"] == "Customer c1" and after.customers["c1"]["name"] == "Renamed"
    # Rolled back: the store and the emulator are as they were, and the plan still applies.
    assert emulator_rows(store) == rows and store.state() == state
    assert make_plan(store, account).operations == plan.operations


def test_manifests_state_and_revision_states_go_through_the_emulator(tmp_path):
    base = Account(tmp_path / "base", small_account(1)).load().manifests
    edited = Account(tmp_path / "edited", small_account(1))
    edited.spec("Contract/c1-2024")["usage_filter"] = {"group_key": "region", "group_values": ["EU"],
                                                       "starting_at": LATER}
    alone = manifests_state(edited.load().manifests)
    # The manifests alone know one filter; on top of the base revision, the history has both.
    assert alone.usage_filters["c1-2024"] == [UsageFilterPeriod("region", frozenset({"EU"}), LATER)]
    before, after = revision_states(base, edited.load().manifests)
    assert before.usage_filters["c1-2024"] == [UsageFilterPeriod("region", frozenset({"US"}), START)]
    assert after.usage_filters["c1-2024"] == [UsageFilterPeriod("region", frozenset({"US"}), START),
                                              UsageFilterPeriod("region", frozenset({"EU"}), LATER)]
    assert set(after.contracts) == {"c1-2024"} and after.contracts["c1-2024"]["customer"] == "c1"
