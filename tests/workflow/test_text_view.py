"""The terminal view of hand-built plans (tests/workflow/plans.py): snapshots pin the layout, one
render per test; the asserts beside them name the behaviour each snapshot must keep.

Update after an intended change with `pytest tests/workflow/test_text_view.py --snapshot-update`
and review the diff of __snapshots__/test_text_view.ambr.
"""

from __future__ import annotations

from billing_reconciler.plan.render import render

from .plans import full_plan, impact_plan


def test_full_plan_text(snapshot):
    out = render(full_plan(), "text")
    assert out == snapshot
    # A changed keyed item lists the field that changed, not both whole items (mutation: the
    # planner's whole-item Change, or the renderer printing before/after of the item).
    assert "      ~ overrides[cloud-discount].multiplier: 0.95 -> 0.9  # forces replacement: removed and added again\n" \
        in out
    assert "      - commits[old-prepaid]  # archived\n" in out
    # Archive and replace operations show their request bodies (mutation: bodies for creates only).
    assert '    archive_rate_card  POST /v1/contract-pricing/rate-cards/archive\n      {\n        "id": "rc-9"\n' in out
    assert '    archive_customer  POST /v1/customers/archive\n      {\n        "id": "cust-2"\n' in out
    # ... and updates do not (mutation: a body for every operation).
    assert '"name": "Acme Inc."' not in out
    # Secrets stay hidden in the field changes and bodies.
    assert "SECRET" not in out


def test_invoice_impact_text(snapshot):
    out = render(impact_plan(), "text")
    assert out == snapshot
    # Per customer: the total with its delta, then subtotal, drawdown and balances, in dollars with
    # two places (mutations: cents shown, `$611.6`, a customer whose total did not change dropped).
    assert "  acme: total $11,000.90 -> $11,000.45 (-$0.45)\n" in out
    assert "  bolt: total $1,000.00 -> $1,000.00 ($0.00)\n" in out
    assert "    commit/credit drawdown     -$611.60 -> -$500.00\n" in out
    assert "    balance bolt-2025/prepaid  $388.40 -> $500.00\n" in out
