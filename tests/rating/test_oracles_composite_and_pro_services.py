"""Oracle cases for COMPOSITE products and professional services (issue 13, item 5); amounts are cents.

Prices from the example catalog (cloud-2024): api-calls 0.5¢ flat and compute-hours tiered 10¢ /
8¢ after 1000 hours, both tagged `cloud`; data-export 9¢/GB tagged `network`. The composite
"Enterprise support" covers `cloud` products (reference §1.3: a COMPOSITE product is priced as a
percentage of the spend of other products; PERCENTAGE price 0.1 = 10%).
"""

from __future__ import annotations

from decimal import Decimal

from billing_reconciler.rating import BillingState

from .helpers import D, ev, example_specs, invoices

JANUARY = [ev("comp", "compute", "2025-01-10T00:00:00Z", hours=1200),
           *(ev("comp", "api_call", "2025-01-11T00:00:00Z") for _ in range(1000)),
           ev("comp", "data_export", "2025-01-12T00:00:00Z", gb=10)]


def _state(rate: dict, overrides=None, commits=None) -> BillingState:
    specs = example_specs()
    specs["Product"]["support"] = {"name": "Enterprise support", "type": "COMPOSITE", "composite_tags": ["cloud"]}
    specs["RateCard"]["cloud-2024"]["rates"].append(
        {"product": "support", "starting_at": "2024-01-01T00:00:00Z", "entitled": True, **rate})
    contract = {"customer": "comp", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z"}
    if overrides:
        contract["overrides"] = overrides
    if commits:
        contract["commits"] = commits
    specs["Customer"] = {"comp": {"name": "Comp"}}
    specs["Contract"] = {"comp-2025": contract}
    return BillingState.from_specs(specs)


def _support(inv):
    return [li for li in inv.line_items if li.product == "support"]


def test_percentage_composite_is_a_share_of_the_listed_products_spend():
    # January cloud spend: compute 1200 h = 1000 × 10 + 200 × 8 = 11600; api 1000 × 0.5 = 500;
    # 11600 + 500 = 12100. Data export (10 × 9 = 90) is `network`: not a component.
    # Support: 12100 × 0.1 = 1210. Invoice: 11600 + 500 + 90 + 1210 = 13400.
    # Catches: composites not invoiced (13400 - 1210 = 12190), components taken from every
    # product (base 12190 -> 1219).
    (jan,) = invoices(_state({"rate_type": "PERCENTAGE", "price": Decimal("0.1")}), JANUARY, "2025-02-01T00:00:00Z")
    (line,) = _support(jan)
    assert (line.kind, line.quantity, line.unit_price, line.total) == ("usage", D(12100), D("0.1"), D(1210))
    assert (jan.subtotal, jan.total) == (D(13400), D(13400))


def test_composite_spend_is_what_the_components_were_charged_after_overrides():
    # 0.95 on `cloud` (the composite has no tag, so it is not discounted itself):
    # compute 1000 × 9.5 + 200 × 7.6 = 9500 + 1520 = 11020; api 1000 × 0.475 = 475; base 11495.
    # Support: 11495 × 0.1 = 1149.5 -> 1150 (half up).
    # Catches: the percentage taken of list prices (12100 -> 1210).
    discount = [{"key": "cloud-discount", "starting_at": "2025-01-01T00:00:00Z", "type": "MULTIPLIER",
                 "multiplier": Decimal("0.95"), "applicable_product_tags": ["cloud"]}]
    (jan,) = invoices(_state({"rate_type": "PERCENTAGE", "price": Decimal("0.1")}, discount), JANUARY,
                      "2025-02-01T00:00:00Z")
    (line,) = _support(jan)
    assert (line.quantity, line.total) == (D(11495), D(1150))


def test_tiered_percentage_composite_and_a_commit_paying_it():
    # TIERED_PERCENTAGE: 10% of the first 10000¢ of spend, 5% beyond. Base 12100:
    # 10000 × 0.1 = 1000; 2100 × 0.05 = 105. A 1000¢ credit that applies only to `support`
    # pays 1000 of it: the composite is a usage charge (the API's line type `usage` covers
    # composite products). Invoice: 11600 + 500 + 90 + 1000 + 105 = 13295; total 13295 - 1000 = 12295.
    # Catches: a flat percentage (1210), composites left out of commit drawdown (total 13295).
    credit = [{"key": "support-credit", "type": "PREPAID", "product": "prepaid-commit",
               "applicable_products": ["support"],
               "access_schedule": {"schedule_items": [{"amount": 1000, "starting_at": "2025-01-01T00:00:00Z",
                                                       "ending_before": "2026-01-01T00:00:00Z"}]}}]
    rate = {"rate_type": "TIERED_PERCENTAGE",
            "tiers": [{"price": Decimal("0.1"), "size": 10000}, {"price": Decimal("0.05")}]}
    (jan,) = invoices(_state(rate, commits=credit), JANUARY, "2025-02-01T00:00:00Z")
    assert [(li.tier, li.quantity, li.total) for li in _support(jan)] == [(1, D(10000), D(1000)), (2, D(2100), D(105))]
    assert (jan.subtotal, jan.total) == (D(13295), D(12295))


def _pro_services(scheduled):
    # Implementation work: a PRO_SERVICE term of 40 hours at 15000¢ ($150) an hour, capped at
    # 500000¢ ($5,000). Invoices are scheduled for it (scheduleProServicesInvoice bodies).
    specs = example_specs()
    specs["Product"]["implementation"] = {"name": "Implementation", "type": "PRO_SERVICE"}
    specs["Customer"] = {"comp": {"name": "Comp"}}
    specs["Contract"] = {"comp-2025": {
        "customer": "comp", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z",
        "professional_services": [{"key": "onboarding", "product": "implementation", "unit_price": 15000,
                                   "quantity": 40, "max_amount": 500000}]}}
    return BillingState.from_specs(specs, pro_service_invoices={"comp-2025": scheduled})


def test_professional_services_are_invoiced_when_scheduled_up_to_the_term_maximum():
    # Feb 15: 10 hours at the term's price: 10 × 15000 = 150000.
    # Mar 15: an amount of 200000.
    # Apr 15: 10 hours at an overriding 20000¢: 200000 asked, but only 500000 - 150000 - 200000
    #   = 150000 is left under max_amount: 150000.
    # May 20: after the horizon (May 1): not issued yet.
    # Each is its own SCHEDULED invoice issued that day; usage invoices stay at 0.
    # Catches: terms never invoiced (no SCHEDULED invoices), max_amount ignored (Apr 15 200000);
    # the check below without the cap catches the term's unit price used over the line's.
    scheduled = [
        {"issued_at": "2025-03-15T00:00:00Z", "line_items": [{"professional_service": "onboarding", "amount": 200000}]},
        {"issued_at": "2025-02-15T00:00:00Z", "line_items": [{"professional_service": "onboarding", "quantity": 10}]},
        {"issued_at": "2025-04-15T00:00:00Z",
         "line_items": [{"professional_service": "onboarding", "unit_price": 20000, "quantity": 10}]},
        {"issued_at": "2025-05-20T00:00:00Z", "line_items": [{"professional_service": "onboarding", "quantity": 1}]},
    ]
    invs = invoices(_pro_services(scheduled), [], "2025-05-01T00:00:00Z")
    own = [(i.issued_at.date().isoformat(), [(li.kind, li.quantity, li.unit_price, li.total) for li in i.line_items])
           for i in invs if i.type == "SCHEDULED"]
    assert own == [
        ("2025-02-15", [("professional_service", D(10), D(15000), D(150000))]),
        ("2025-03-15", [("professional_service", D(1), D(200000), D(200000))]),
        ("2025-04-15", [("professional_service", D(1), D(150000), D(150000))]),
    ]
    assert all(i.total == 0 for i in invs if i.type == "USAGE")
    # Without the cap in the way, the line's unit price overrides the term's: 10 × 20000 = 200000.
    invs = invoices(_pro_services(scheduled[2:3]), [], "2025-05-01T00:00:00Z")
    assert [i.total for i in invs if i.type == "SCHEDULED"] == [D(200000)]
    # Two invoices scheduled the same day stay two invoices (each request creates one).
    twice = [{"issued_at": "2025-02-15T00:00:00Z", "line_items": [{"professional_service": "onboarding", "quantity": 1}]}] * 2
    invs = invoices(_pro_services(twice), [], "2025-05-01T00:00:00Z")
    assert [i.total for i in invs if i.type == "SCHEDULED"] == [D(15000), D(15000)]
    # No scheduled invoice: the term alone bills nothing (as in the API).
    assert all(i.total == 0 for i in invoices(_pro_services([]), [], "2025-05-01T00:00:00Z"))
