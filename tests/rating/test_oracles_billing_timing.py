"""Oracle cases for when a charge is billed (issue 13, item 2): on the invoice issued at its date.

Amounts are cents, computed by hand. A usage invoice is issued when its statement period ends; any
other invoice at its date (reference §5.6: ADVANCE is billed at the start of each period, ARREARS
at the end; seed 000: a charge joins the usage invoice whose period ends on the charge's date).
"""

from __future__ import annotations

from billing_reconciler.rating import BillingState, invoices_json

from .helpers import D, example_specs, invoices, summary


def _monthly_plan(collection: str) -> BillingState:
    # Pro Plan at 10000¢ a month (a MONTHLY rate added to the example card), 2 units from
    # 2025-01-15, prorated, billing cycle anchored on 2025-01-01; usage statements monthly on the 1st.
    specs = example_specs()
    specs["RateCard"]["seats-2025"]["rates"].append(
        {"product": "pro-plan", "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
         "rate_type": "SUBSCRIPTION", "price": 10000, "billing_frequency": "MONTHLY"})
    specs["Customer"] = {"mono": {"name": "Mono"}}
    specs["Contract"] = {"mono-2025": {
        "customer": "mono", "rate_card": "seats-2025", "starting_at": "2025-01-15T00:00:00Z",
        "subscriptions": [{
            "key": "plan", "collection_schedule": collection,
            "proration": {"is_prorated": True, "invoice_behavior": "BILL_ON_NEXT_COLLECTION_DATE"},
            "subscription_rate": {"product": "pro-plan", "billing_frequency": "MONTHLY"},
            "initial_quantity": 2, "billing_cycle_config": {"anchor_date": "2025-01-01T00:00:00Z"}}]}}
    return BillingState.from_specs(specs)


def test_advance_is_billed_at_the_period_start_and_arrears_at_its_end():
    # Service periods: Jan 15 - Feb 1 (a stub: 17 of January's 31 days), Feb 1 - Mar 1, Mar 1 - Apr 1.
    # Stub charge: 2 × 10000 × 17/31 = 10967.74... -> 10968. Full month: 2 × 10000 = 20000.
    # Usage invoices: Jan 15 - Feb 1 (issued Feb 1) and Feb 1 - Mar 1 (issued Mar 1).
    #
    # ADVANCE: Jan 15's 10968 is billed on Jan 15; no usage invoice is issued that day, so it gets
    # an invoice of its own. Feb 1's 20000 is on the invoice issued Feb 1 (January's usage
    # invoice), Mar 1's 20000 on the one issued Mar 1 (February's), as seed 000's $75 package.
    # Catches: an advance charge placed on the usage invoice of the period it falls in (Jan 15 ->
    # January's invoice, Feb 1 -> February's), i.e. billed at the period's end like arrears.
    invs = invoices(_monthly_plan("ADVANCE"), [], "2025-03-01T00:00:00Z")
    assert summary(invs) == [
        ("mono-2025", "SCHEDULED", "2025-01-15", D(10968), D(10968)),
        ("mono-2025", "USAGE", "2025-01-15", D(20000), D(20000)),
        ("mono-2025", "USAGE", "2025-02-01", D(20000), D(20000)),
    ]
    assert [i.issued_at.date().isoformat() for i in invs] == ["2025-01-15", "2025-02-01", "2025-03-01"]
    jan = invs[1]
    assert [(li.starting_at.date().isoformat(), li.total) for li in jan.line_items] == [("2025-02-01", D(20000))]
    # ARREARS: the stub's 10968 is billed at its end, Feb 1, on January's usage invoice; Feb 1 -
    # Mar 1's 20000 at Mar 1 on February's; Mar 1 - Apr 1 ends after the horizon: not issued.
    # Catches: arrears billed at the period start (10968 on an invoice of Jan 15).
    invs = invoices(_monthly_plan("ARREARS"), [], "2025-03-01T00:00:00Z")
    assert summary(invs) == [
        ("mono-2025", "USAGE", "2025-01-15", D(10968), D(10968)),
        ("mono-2025", "USAGE", "2025-02-01", D(20000), D(20000)),
    ]
    assert invs[0].line_items[0].starting_at.date().isoformat() == "2025-01-15"


def test_every_invoice_carries_its_issue_date_in_json():
    invs = invoices(_monthly_plan("ADVANCE"), [], "2025-03-01T00:00:00Z")
    doc = invoices_json(invs)["invoices"]
    assert [(d["type"], d["issued_at"]) for d in doc] == [
        ("SCHEDULED", "2025-01-15T00:00:00Z"), ("USAGE", "2025-02-01T00:00:00Z"), ("USAGE", "2025-03-01T00:00:00Z")]
