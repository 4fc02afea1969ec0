"""Oracle for customer-level commits and credits (issue 13, seed 000): shared by the customer's
contracts and drawn in time order across them (the engine's time unit is a statement slice: usage
is aggregated per period, so the months below order the draws). Amounts are cents; compute-hours
on cloud-2024 is 10¢ for the first 1000 hours of a monthly statement period, then 8¢."""

from __future__ import annotations

from billing_reconciler.rating import BillingState, rate_events
from billing_reconciler.rating.timegrid import ts

from .helpers import D, ev, example_specs

START, END = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"


def _balance(key, amount, priority, **extra):
    return {"key": key, "product": "prepaid-commit", "priority": priority, "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [{"amount": amount, "starting_at": START, "ending_before": END}]},
            **extra}


def _contract(region, **extra):
    return {"customer": "multi", "rate_card": "cloud-2024", "starting_at": START,
            "usage_filter": {"group_key": "region", "group_values": [region]}, **extra}


def test_customer_balances_are_shared_in_time_order_and_scoped_to_their_contracts():
    specs = example_specs()
    specs["Customer"] = {"multi": {
        "name": "Multi",
        # shared: any contract, priority 1, invoiced on multi-us; eu-only: priority 2, multi-eu only.
        "commits": [_balance("shared", 12000, 1, type="PREPAID", invoice_contract="multi-us",
                             invoice_schedule={"schedule_items": [{"timestamp": START, "amount": 12000}]})],
        "credits": [_balance("eu-only", 3000, 2, applicable_contracts=["multi-eu"])]}}
    specs["Contract"] = {"multi-eu": _contract("EU"),
                         "multi-us": _contract("US", credits=[_balance("us-promo", 1000, 1)])}
    events = [ev("multi", "compute", "2025-01-05T00:00:00Z", region="EU", hours=500),
              ev("multi", "compute", "2025-02-10T00:00:00Z", region="US", hours=1000),
              ev("multi", "compute", "2025-03-20T00:00:00Z", region="EU", hours=500)]
    result = rate_events(BillingState.from_specs(specs), events, ts("2025-04-01T00:00:00Z"))
    # In time order:
    # January, EU 500 h × 10 = 5000: `shared` (priority 1) pays it all: 12000 -> 7000.
    # February, US 1000 h × 10 = 10000: `us-promo` (contract-level, priority 1) 1000, `shared` 7000;
    #   `eu-only` is not the US contract's: 2000 billed.
    # March, EU 500 h × 10 = 5000: `shared` is empty, `eu-only` (priority 2) 3000: 2000 billed.
    # `shared` is bought on multi-us on Jan 1: 12000 on its own invoice.
    # Catches: contracts drawn one after the other (multi-eu first: shared pays EU's 10000, US is
    # billed 7000, EU 0), applicable_contracts ignored (US also takes eu-only: US 0, EU 4000), the
    # purchase not invoiced on its invoice_contract.
    got = sorted((i.contract, i.type, i.start_timestamp.date().isoformat(), i.subtotal, i.total)
                 for i in result.invoices)
    assert got == [("multi-eu", "USAGE", "2025-01-01", D(5000), D(0)),
                   ("multi-eu", "USAGE", "2025-02-01", D(0), D(0)),
                   ("multi-eu", "USAGE", "2025-03-01", D(5000), D(2000)),
                   ("multi-us", "SCHEDULED", "2025-01-01", D(12000), D(12000)),
                   ("multi-us", "USAGE", "2025-01-01", D(0), D(0)),
                   ("multi-us", "USAGE", "2025-02-01", D(10000), D(2000)),
                   ("multi-us", "USAGE", "2025-03-01", D(0), D(0))]
    us = [i for i in result.invoices if i.contract == "multi-us" and i.type == "USAGE"][1]
    assert sorted((li.commit or li.credit, li.total) for li in us.line_items if li.kind == "drawdown") == [
        ("multi/shared", D(-7000)), ("us-promo", D(-1000))]
