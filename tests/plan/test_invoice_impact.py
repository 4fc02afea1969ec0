"""`plan --usage` figures per customer (plan/impact.py): a change a prepaid commit absorbs is listed
with its subtotal, drawdown and balance, not dropped because the invoice total did not move."""

from __future__ import annotations

import json

from billing_reconciler.plan.impact import invoice_impact
from billing_reconciler.service import billing_state, plan_state

from .support import Account, converge, make_plan, small_account


def test_a_change_the_prepaid_commit_absorbs_is_listed_with_drawdown_and_balance(store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.5  # was 0.95
    plan = make_plan(store, account)
    events = tmp_path / "usage.jsonl"
    events.write_text("".join(json.dumps({
        "transaction_id": f"t{i}", "customer_id": "c1-prod", "event_type": "api_call",
        "timestamp": "2024-11-10T00:00:00Z", "properties": {"region": "US"}}) + "\n" for i in range(1000)))

    impact = invoice_impact(billing_state(store), plan_state(store, plan), events)

    # November (rated until 2024-12-01): the $1,000 commit's invoice (100000) + the quarterly
    # platform fee (100000) + 1000 API calls x 0.5 cents x the cloud multiplier, all drawn from the
    # commit (a cloud product). Before: 1000 x 0.5 x 0.95 = 475; after: 1000 x 0.5 x 0.5 = 250.
    # Total 200000 both times; subtotal 200475 -> 200250; balance 100000 - 475 = 99525 -> 99750.
    # Mutation caught: rows kept only when the total changes (this customer would be dropped).
    assert impact["customers"] == [{
        "customer": "c1", "before": 200000, "after": 200000, "delta": 0,
        "subtotal": {"before": 200475, "after": 200250},
        "drawdown": {"before": -475, "after": -250},
        "balances": [{"balance": "c1-2024/prepaid", "before": 99525, "after": 99750}]}]
