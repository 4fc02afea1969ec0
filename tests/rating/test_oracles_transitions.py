"""Oracle cases for contract transitions (issue 13): usage is rated on the contract in force at
each moment, and a RENEWAL carries the unused balance of commits and credits with a
rollover_fraction into the new contract; SUPERSEDE carries nothing. Amounts are cents.

Prices: cloud-2024 (example catalog) prices compute-hours tiered 10¢ for the first 1000 hours of a
statement period, then 8¢ (tag `cloud`). cloud-2025 (added here) prices them flat 7¢.
The backend ends the old contract at the new one's start (the emulator tests check that); the
states below hold it as the backend reads it back.
"""

from __future__ import annotations

from billing_reconciler.rating import BillingState, rate_events
from billing_reconciler.rating.timegrid import ts

from .helpers import D, ev, example_specs, summary

CLOUD_2025 = {"name": "Cloud 2025", "rates": [
    {"product": "compute-hours", "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
     "price": 7}]}


def _balance(key, amount, ending_before, rollover):
    return {"key": key, "product": "prepaid-commit", "applicable_product_tags": ["cloud"],
            "rollover_fraction": D(rollover),
            "access_schedule": {"schedule_items": [
                {"amount": amount, "starting_at": "2024-11-01T00:00:00Z", "ending_before": ending_before}]}}


def _state(transition_type):
    old = {"customer": "acme", "rate_card": "cloud-2024", "starting_at": "2024-11-01T00:00:00Z",
           "ending_before": "2025-02-01T00:00:00Z",  # ended by the transition
           "commits": [{**_balance("annual", 100000, "2025-11-01T00:00:00Z", "0.5"), "type": "PREPAID"}],
           "credits": [_balance("promo", 5000, "2026-01-01T00:00:00Z", "0.2")]}
    new = {"customer": "acme", "rate_card": "cloud-2025", "starting_at": "2025-02-01T00:00:00Z",
           "ending_before": "2026-02-01T00:00:00Z",
           "transition": {"from": "acme-2024", "type": transition_type}}
    specs = example_specs()
    specs["Customer"] = {"acme": {"name": "Acme"}}
    specs["Contract"] = {"acme-2024": old, "acme-2025": new}
    specs["RateCard"]["cloud-2025"] = CLOUD_2025
    return BillingState.from_specs(specs)


EVENTS = [ev("acme", "compute", "2025-01-10T00:00:00Z", hours=1000),
          ev("acme", "compute", "2025-01-31T23:59:59Z", hours=100),
          ev("acme", "compute", "2025-02-01T00:00:00Z", hours=2000)]


def test_renewal_rates_each_moment_on_its_contract_and_rolls_balances_over():
    # January, on acme-2024 (cloud-2024): 1000 h × 10 + 100 h × 8 (second tier) = 10800, paid by
    #   `annual` (both end-dated; annual expires first): 100000 - 10800 = 89200 left; promo 5000.
    # 2025-02-01T00:00:00Z is the new contract's start: 2000 h on acme-2025 at cloud-2025's 7¢ =
    #   14000 (not tiered: the old card's 10/8 would give 18000).
    # Rolled over at the RENEWAL: annual 0.5 × 89200 = 44600, promo 0.2 × 5000 = 1000, both usable
    #   to 2026-02-01; drawn promo first (same end, credits before commits): 1000, then 13000 from
    #   annual: February total 14000 - 14000 = 0; annual keeps 44600 - 13000 = 31600.
    # Catches: old contract still taking usage after the transition (February billed on acme-2024),
    # no rollover (February total 14000), the full unused balance rolled over (31600 would be
    # 89200 + 5000 - 14000), the original amount rolled over.
    result = rate_events(_state("RENEWAL"), EVENTS, ts("2025-03-01T00:00:00Z"))
    assert summary(result.invoices) == [
        ("acme-2024", "USAGE", "2024-11-01", D(0), D(0)),
        ("acme-2024", "USAGE", "2024-12-01", D(0), D(0)),
        ("acme-2024", "USAGE", "2025-01-01", D(10800), D(0)),
        ("acme-2025", "USAGE", "2025-02-01", D(14000), D(0)),
    ]
    feb = result.invoices[-1]
    drawn = {li.commit or li.credit: li.total for li in feb.line_items if li.kind == "drawdown"}
    assert drawn == {"acme-2024/promo": D(-1000), "acme-2024/annual": D(-13000)}
    assert {s.key: s.remaining for s in result.balances["acme-2025"]} == {
        "acme-2024/annual": D(31600), "acme-2024/promo": D(0)}


def test_supersede_rates_on_the_new_contract_and_carries_nothing_over():
    # Same usage: January 10800 on acme-2024 netted by `annual`; February 2000 h × 7 = 14000 on
    # acme-2025, nothing rolled over (SUPERSEDE): billed in full.
    result = rate_events(_state("SUPERSEDE"), EVENTS, ts("2025-03-01T00:00:00Z"))
    assert summary(result.invoices)[2:] == [
        ("acme-2024", "USAGE", "2025-01-01", D(10800), D(0)),
        ("acme-2025", "USAGE", "2025-02-01", D(14000), D(14000)),
    ]
    assert result.balances["acme-2025"] == []


def test_the_replaced_contract_bills_nothing_dated_after_its_end():
    # acme-2024 (ended 2025-02-01 by the transition) has a fee of 5000 on 2025-01-15 and one on
    # 2025-03-15, and a POSTPAID commitment of 20000 trued up on 2025-06-01 (no usage at all, so
    # the whole 20000 is unmet).
    # Billed: the January fee only (5000); the March fee belongs to the new contract. The true-up
    # (20000, dated after the end) stays under AS_IS (the default) and is gone under REMOVE.
    # Catches: the old contract billing its whole schedule (a 5000 invoice on 2025-03-15).
    def state_with(trueup):
        st = _state("SUPERSEDE")
        old = st.contracts["acme-2024"]
        old["scheduled_charges"] = [{"key": "fee", "product": "platform-fee", "schedule": {"schedule_items": [
            {"timestamp": "2025-01-15T00:00:00Z", "amount": 5000},
            {"timestamp": "2025-03-15T00:00:00Z", "amount": 5000}]}}]
        old["commits"] = [{"key": "owed", "type": "POSTPAID", "product": "prepaid-commit",
                           "applicable_product_tags": ["network"],
                           "access_schedule": {"schedule_items": [{"amount": 20000, "starting_at": "2024-11-01T00:00:00Z",
                                                                   "ending_before": "2025-06-01T00:00:00Z"}]},
                           "invoice_schedule": {"schedule_items": [{"timestamp": "2025-06-01T00:00:00Z", "amount": 20000}]}}]
        if trueup:
            st.contracts["acme-2025"]["transition"]["future_invoice_behavior"] = {"trueup": trueup}
        return st

    def scheduled(st):
        invs = rate_events(st, [], ts("2025-07-01T00:00:00Z")).invoices
        return [(i.contract, i.start_timestamp.date().isoformat(), i.total) for i in invs if i.type == "SCHEDULED"]

    assert scheduled(state_with(None)) == [("acme-2024", "2025-01-15", D(5000)), ("acme-2024", "2025-06-01", D(20000))]
    assert scheduled(state_with("REMOVE")) == [("acme-2024", "2025-01-15", D(5000))]
