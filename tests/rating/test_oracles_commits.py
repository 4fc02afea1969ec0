"""Oracle cases for POSTPAID commits and rollover (issue 13, items 3 and 4); amounts are cents.

Prices from the example catalog: compute-hours tiered 10¢ for the first 1000 hours then 8¢
(tag `cloud`); data-export 9¢/GB (tag `network`).
"""

from __future__ import annotations

from .helpers import D, ev, invoices, state, summary


def _postpaid(amount, consolidate=False):
    # A $1,000 (or other) postpaid commitment on `cloud` products for Q1 2025, trued up on Apr 1.
    contract = {
        "customer": "post", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z",
        "commits": [{
            "key": "q1-commitment", "type": "POSTPAID", "product": "prepaid-commit", "name": "Q1 commitment",
            "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [
                {"amount": amount, "starting_at": "2025-01-01T00:00:00Z", "ending_before": "2025-04-01T00:00:00Z"}]},
            "invoice_schedule": {"schedule_items": [{"timestamp": "2025-04-01T00:00:00Z", "amount": amount}]}}]}
    if consolidate:
        contract["scheduled_charges_on_usage_invoices"] = "ALL"
    return state({"post-2025": contract}, {"post": {"name": "Post"}}, keep_examples=False)


def test_postpaid_commit_usage_is_billed_and_only_the_shortfall_is_trued_up():
    # January: 500 h × 10 = 5000 (cloud: counts toward the commitment) + 10 GB × 9 = 90 (network,
    # outside it): both billed, 5090. February: 300 h × 10 = 3000, billed. March: nothing.
    # True-up on Apr 1 (its own invoice: no consolidation): 100000 - (5000 + 3000) = 92000.
    # Catches: usage netted against the commit as if prepaid (January total 90, February 0) and
    # the full commitment billed at the end (100000 instead of 92000).
    events = [ev("post", "compute", "2025-01-10T00:00:00Z", hours=500),
              ev("post", "data_export", "2025-01-11T00:00:00Z", gb=10),
              ev("post", "compute", "2025-02-10T00:00:00Z", hours=300)]
    invs = invoices(_postpaid(100000), events, "2025-04-02T00:00:00Z")
    assert summary(invs) == [
        ("post-2025", "USAGE", "2025-01-01", D(5090), D(5090)),
        ("post-2025", "USAGE", "2025-02-01", D(3000), D(3000)),
        ("post-2025", "USAGE", "2025-03-01", D(0), D(0)),
        ("post-2025", "SCHEDULED", "2025-04-01", D(92000), D(92000)),
        ("post-2025", "USAGE", "2025-04-01", D(0), D(0)),
    ]
    jan = invs[0]
    assert [li.kind for li in jan.line_items] == ["usage", "usage"]  # no drawdown line
    compute = [li for li in jan.line_items if li.product == "compute-hours"][0]
    assert (compute.paid_by, compute.counts_toward) == ({}, {"q1-commitment": D(5000)})
    (trueup,) = invs[3].line_items
    assert (trueup.kind, trueup.commit, trueup.total) == ("postpaid_trueup", "q1-commitment", D(92000))
    # Consolidated (ALL): the true-up dated Apr 1 joins March's usage invoice (it ends Apr 1).
    invs = invoices(_postpaid(100000, consolidate=True), events, "2025-04-01T00:00:00Z")
    assert summary(invs)[2] == ("post-2025", "USAGE", "2025-03-01", D(92000), D(92000))


def test_met_postpaid_commit_has_no_trueup():
    # Commitment 10000; January 1500 h = 1000 × 10 + 500 × 8 = 14000, all billed; 10000 of it
    # counts toward the commitment (met), the other 4000 is simply usage: no true-up invoice.
    # Catches: billing the commitment regardless (a 10000 SCHEDULED invoice on Apr 1).
    invs = invoices(_postpaid(10000), [ev("post", "compute", "2025-01-10T00:00:00Z", hours=1500)],
                    "2025-04-02T00:00:00Z")
    assert summary(invs) == [
        ("post-2025", "USAGE", "2025-01-01", D(14000), D(14000)),
        ("post-2025", "USAGE", "2025-02-01", D(0), D(0)),
        ("post-2025", "USAGE", "2025-03-01", D(0), D(0)),
        ("post-2025", "USAGE", "2025-04-01", D(0), D(0)),
    ]
    assert sum((li.counts_toward.get("q1-commitment", D(0)) for li in invs[0].line_items), D(0)) == D(10000)


def _balance(key, kind, amount, priority, ending_before="2025-11-01T00:00:00Z", rollover=None, postpaid=False):
    item = {"key": key, "product": "prepaid-commit", "priority": priority, "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [
                {"amount": amount, "starting_at": "2024-11-01T00:00:00Z", "ending_before": ending_before}]}}
    if kind == "commit":
        item["type"] = "POSTPAID" if postpaid else "PREPAID"
    if postpaid:
        item["invoice_schedule"] = {"schedule_items": [{"timestamp": ending_before, "amount": amount}]}
    if rollover is not None:
        item["rollover_fraction"] = D(rollover)
    return item


def test_one_off_commits_and_credits_roll_over_only_into_a_renewal():
    # A one-year contract (2024-11-01 .. 2025-11-01) with balances drawn in priority order:
    #   annual: PREPAID commit 100000, priority 1, rollover 0.5
    #   promo:  credit 5000, priority 2, rollover 0.3333
    #   sla:    credit 3000, priority 3, no rollover_fraction
    #   early:  credit 2000, priority 5, rollover 1, but its access ends 2025-06-01
    #   owed:   POSTPAID commit 4000, priority 6, rollover 1 (trued up, never rolled over)
    # November 2024: 1000 h × 10 = 10000, all paid by `annual` (priority 1): 90000 left.
    from billing_reconciler.rating import rate_events
    from billing_reconciler.rating.rollover import rollover_segments
    from billing_reconciler.rating.timegrid import ts

    contract = {"customer": "roll", "rate_card": "cloud-2024", "starting_at": "2024-11-01T00:00:00Z",
                "ending_before": "2025-11-01T00:00:00Z",
                "commits": [_balance("annual", "commit", 100000, 1, rollover="0.5"),
                            _balance("owed", "commit", 4000, 6, rollover="1", postpaid=True)],
                "credits": [_balance("promo", "credit", 5000, 2, rollover="0.3333"),
                            _balance("sla", "credit", 3000, 3),
                            _balance("early", "credit", 2000, 5, ending_before="2025-06-01T00:00:00Z",
                                     rollover="1")]}
    st = state({"roll-2024": contract}, {"roll": {"name": "Roll"}}, keep_examples=False)
    result = rate_events(st, [ev("roll", "compute", "2024-11-10T00:00:00Z", hours=1000)], ts("2025-11-01T00:00:00Z"))
    # Within the contract nothing rolls over: no balance grows, November's invoice nets to 0.
    assert summary(result.invoices)[0] == ("roll-2024", "USAGE", "2024-11-01", D(10000), D(0))
    assert {s.key: s.amount for s in result.balances["roll-2024"]} == {
        "annual": D(100000), "owed": D(4000), "promo": D(5000), "sla": D(3000), "early": D(2000)}
    # A RENEWAL on 2025-11-01 carries: annual 0.5 × 90000 = 45000; promo 0.3333 × 5000 = 1666.5
    # -> 1667 (half up); sla nothing (no fraction); early nothing (expired 2025-06-01); owed
    # nothing (POSTPAID: its 4000 is trued up instead).
    # Catches: rolling over the original amount (annual 50000), ignoring expiry (early 2000),
    # ignoring the fraction (annual 90000, promo 5000), rolling over a postpaid commitment.
    renewal = rollover_segments(result.balances["roll-2024"], ts("2025-11-01T00:00:00Z"), ts("2026-11-01T00:00:00Z"))
    assert [(s.key, s.kind, s.amount, s.start.date().isoformat(), s.end.date().isoformat()) for s in renewal] == [
        ("annual", "commit", D(45000), "2025-11-01", "2026-11-01"),
        ("promo", "credit", D(1667), "2025-11-01", "2026-11-01")]
    assert all(s.used == 0 for s in renewal)
