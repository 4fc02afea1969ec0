"""Oracle cases computed by hand from the product pages; amounts are cents, to the cent.

Each test writes its arithmetic in a comment. Prices come from the example catalog
(manifests/catalog): api-calls 0.5¢ flat; compute-hours tiered 10¢ for the first 1000 hours then
8¢; data-export 9¢/GB (tag `network`, not `cloud`); video-generation 2¢/second; Pro Plan
120000¢ a year (not entitled by default).
"""

from __future__ import annotations

from decimal import Decimal

from .helpers import D, ev, example_specs, invoices, state, summary

UNTIL_Q1 = "2025-02-01T00:00:00Z"


def test_seed_000_consolidation_75_dollar_package_and_100_dollar_monthly_commit():
    # "Best" package: $75/month buys a $100 monthly commit, from Jan 1, no end, charges consolidated.
    # Invoice 1 (Jan 1, SCHEDULED): the $75 charge = 7500.
    # Invoice 2 (usage Jan 1 - Feb 1): January usage 1375 compute hours
    #   = 1000 × 10 + 375 × 8 = 10000 + 3000 = 13000; the January commit pays 10000;
    #   plus February's $75 (its date, Feb 1, is the end of January's usage period) = 7500.
    #   subtotal 13000 + 7500 = 20500; total 20500 - 10000 = 10500.
    # Invoice 3 (usage Feb 1 - Mar 1): no usage, March's $75 = 7500.
    best = {"best-2025": {
        "customer": "bestco", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z",
        "scheduled_charges_on_usage_invoices": "ALL",
        "recurring_commits": [{
            "key": "best-package", "name": "Best package", "product": "prepaid-commit", "priority": 1,
            "starting_at": "2025-01-01T00:00:00Z", "access_amount": {"unit_price": 10000},
            "invoice_amount": {"unit_price": 7500, "quantity": 1}, "commit_duration": {"value": 1}}]}}
    st = state(best, {"bestco": {"name": "Best Co", "ingest_aliases": ["best-prod"]}}, keep_examples=False)
    invs = invoices(st, [ev("best-prod", "compute", "2025-01-10T00:00:00Z", hours=1375)], "2025-03-01T00:00:00Z")
    assert summary(invs) == [
        ("best-2025", "SCHEDULED", "2025-01-01", D(7500), D(7500)),
        ("best-2025", "USAGE", "2025-01-01", D(20500), D(10500)),
        ("best-2025", "USAGE", "2025-02-01", D(7500), D(7500)),
    ]
    assert [li.total for li in invs[0].line_items] == [D(7500)]
    jan = invs[1]
    assert [(li.kind, li.quantity, li.unit_price, li.total) for li in jan.line_items] == [
        ("usage", D(1000), D(10), D(10000)),
        ("usage", D(375), D(8), D(3000)),
        ("drawdown", D(1), D(-10000), D(-10000)),
        ("commit_purchase", D(1), D(7500), D(7500)),
    ]


def widgetsexpress_state():
    # The example contract plus the page's contract edit (0.95 on `cloud` from 2024-11-01) and its
    # usage filter history: US from 2024-11-01, US+EU from 2025-01-01 (setUsageFilter).
    specs = example_specs()
    contract = specs["Contract"]["widgetsexpress-2024"]
    contract["overrides"] = [{"key": "cloud-discount", "starting_at": "2024-11-01T00:00:00Z", "entitled": True,
                              "type": "MULTIPLIER", "multiplier": Decimal("0.95"),
                              "applicable_product_tags": ["cloud"]}]
    history = {"widgetsexpress-2024": [
        {"group_key": "region", "group_values": ["US"], "starting_at": "2024-11-01T00:00:00Z"},
        {"group_key": "region", "group_values": ["US", "EU"], "starting_at": "2025-01-01T00:00:00Z"},
    ]}
    return state({"widgetsexpress-2024": contract}, history=history)


# The widgetsexpress quarter (test_widgetsexpress_first_quarter; tests/spark rates it too).
WIDGETSEXPRESS_Q1_EVENTS = [
    # November: 1200 US compute hours (cloud), 100 EU hours (filtered out), 10 GB US export.
    ev("widgets-express-prod", "compute", "2024-11-05T00:00:00Z", region="US", hours=700),
    ev("team@widgetsexpress.com", "compute", "2024-11-20T00:00:00Z", region="US", hours=500),
    ev("widgetsexpress", "compute", "2024-11-21T00:00:00Z", region="EU", hours=100),
    ev("widgets-express-prod", "data_export", "2024-11-22T00:00:00Z", region="US", gb=10),
    # December: 500 US hours; 300 EU hours still filtered out.
    ev("widgets-express-prod", "compute", "2024-12-03T00:00:00Z", region="US", hours=500),
    ev("widgets-express-prod", "compute", "2024-12-04T00:00:00Z", region="EU", hours=300),
    # January: US+EU from 2025-01-01: 100 US + 200 EU hours.
    ev("widgets-express-prod", "compute", "2025-01-08T00:00:00Z", region="US", hours=100),
    ev("widgets-express-prod", "compute", "2025-01-09T00:00:00Z", region="EU", hours=200),
    # APAC is never routed to this contract.
    ev("widgets-express-prod", "compute", "2025-01-10T00:00:00Z", region="APAC", hours=999),
]


def test_widgetsexpress_first_quarter():
    events = WIDGETSEXPRESS_Q1_EVENTS
    invs = invoices(widgetsexpress_state(), events, UNTIL_Q1, customers=["widgetsexpress"])
    # Nov 1 SCHEDULED: platform charge 100000 (quarterly, EACH) + prepaid commit 1000000 = 1100000.
    #   (Nov 1 is no usage period's end, so nothing consolidates.)
    # Nov usage: compute 1200 h, tiered with the 0.95 multiplier on every tier:
    #   1000 × (10 × 0.95 = 9.5) = 9500; 200 × (8 × 0.95 = 7.6) = 1520; cloud subtotal 11020,
    #   all drawn from the prepaid commit (cloud tag); export 10 × 9 = 90, not cloud: overage.
    #   subtotal 11020 + 90 = 11110; total 11110 - 11020 = 90.
    # Dec usage: 500 h (tiers restart each statement period) × 9.5 = 4750, all from the commit: total 0.
    # Jan usage: (100 US + 200 EU) = 300 h × 9.5 = 2850 from the commit; the Feb 1 platform charge
    #   (quarterly: Nov 1, Feb 1, May 1, Aug 1) consolidates onto January (ends Feb 1): 100000.
    #   subtotal 2850 + 100000 = 102850; total 100000.
    assert summary(invs) == [
        ("widgetsexpress-2024", "SCHEDULED", "2024-11-01", D(1100000), D(1100000)),
        ("widgetsexpress-2024", "USAGE", "2024-11-01", D(11110), D(90)),
        ("widgetsexpress-2024", "USAGE", "2024-12-01", D(4750), D(0)),
        ("widgetsexpress-2024", "USAGE", "2025-01-01", D(102850), D(100000)),
    ]
    nov = invs[1]
    compute = [li for li in nov.line_items if li.product == "compute-hours"]
    assert [(li.quantity, li.unit_price, li.total, li.override, li.tier) for li in compute] == [
        (D(1000), D("9.5"), D(9500), "cloud-discount", 1), (D(200), D("7.6"), D(1520), "cloud-discount", 2)]
    assert [li.total for li in nov.line_items if li.kind == "drawdown"] == [D(-11020)]
    assert all(li.paid_by == {"prepaid-2024": li.total} for li in compute)
    # Commit left after the quarter: 1000000 - 11020 - 4750 - 2850 = 981380 (drawn 18620).
    drawn = -sum(li.total for inv in invs for li in inv.line_items if li.kind == "drawdown")
    assert drawn == D(18620)


def tiered_state(overrides=None, prioritization=None):
    contract = {"customer": "tiny", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z"}
    if overrides:
        contract["overrides"] = overrides
    if prioritization:
        contract["multiplier_override_prioritization"] = prioritization
    return state({"tiny-2025": contract}, {"tiny": {"name": "Tiny"}}, keep_examples=False)


TINY_EVENTS = [ev("tiny", "compute", "2025-01-03T00:00:00Z", hours=600),
               ev("tiny", "compute", "2025-01-04T00:00:00Z", hours=700),
               ev("tiny", "compute", "2025-02-04T00:00:00Z", hours=50)]


def test_tiered_rate_across_the_tier_boundary():
    # 600 + 700 = 1300 hours in January: the first 1000 at 10¢ = 10000, the next 300 at 8¢ = 2400;
    # total 12400. February starts again at tier 1: 50 × 10 = 500.
    events = TINY_EVENTS
    invs = invoices(tiered_state(), events, "2025-03-01T00:00:00Z")
    assert summary(invs) == [("tiny-2025", "USAGE", "2025-01-01", D(12400), D(12400)),
                             ("tiny-2025", "USAGE", "2025-02-01", D(500), D(500))]
    assert [(li.tier, li.quantity, li.total) for li in invs[0].line_items] == [(1, D(1000), D(10000)),
                                                                             (2, D(300), D(2400))]


def _override_pair(overwrite_priority, multiplier_priority):
    return [
        {"key": "half-off", "starting_at": "2025-01-01T00:00:00Z", "product": "api-calls", "type": "MULTIPLIER",
         "multiplier": Decimal("0.5"), "priority": multiplier_priority},
        {"key": "fixed-price", "starting_at": "2025-01-01T00:00:00Z", "product": "api-calls", "type": "OVERWRITE",
         "overwrite_rate": {"rate_type": "FLAT", "price": Decimal("0.3")}, "priority": overwrite_priority},
    ]


def _api_calls(n):
    return [ev("tiny", "api_call", "2025-01-05T00:00:00Z") for _ in range(n)]


def test_overwrite_beats_multiplier_by_priority():
    # EXPLICIT: the lowest priority wins. OVERWRITE (priority 1) at 0.3¢ over the 0.5 multiplier
    # (priority 2): 1000 calls × 0.3 = 300.
    invs = invoices(tiered_state(_override_pair(1, 2), "EXPLICIT"), _api_calls(1000), "2025-02-01T00:00:00Z")
    (line,) = invs[0].line_items
    assert (line.unit_price, line.total, line.override) == (D("0.3"), D(300), "fixed-price")
    # Priorities swapped: still the OVERWRITE: under EXPLICIT "overwrites are prioritized first, and
    # then tiered and multiplier overrides ... by their priority value" (the API's `priority` text,
    # reference §5.3), so the multiplier's priority 1 does not beat it: 1000 × 0.3 = 300.
    # (This case used to expect the multiplier, 1000 × 0.25 = 250: wrong by that rule.)
    invs = invoices(tiered_state(_override_pair(2, 1), "EXPLICIT"), _api_calls(1000), "2025-02-01T00:00:00Z")
    (line,) = invs[0].line_items
    assert (line.unit_price, line.total, line.override) == (D("0.3"), D(300), "fixed-price")
    # Without an OVERWRITE, priority decides between multipliers and tiered overrides.
    only_multiplier = [o for o in _override_pair(2, 1) if o["type"] == "MULTIPLIER"]
    invs = invoices(tiered_state(only_multiplier, "EXPLICIT"), _api_calls(1000), "2025-02-01T00:00:00Z")
    assert invs[0].line_items[0].total == D(250)
    # LOWEST_MULTIPLIER (default): an OVERWRITE is prioritised over multipliers: 300.
    invs = invoices(tiered_state(_override_pair(2, 1)), _api_calls(1000), "2025-02-01T00:00:00Z")
    assert invs[0].line_items[0].total == D(300)


def _tiered_and_overwrite(overwrite_priority):
    overwrite = {"key": "fixed-price", "starting_at": "2025-01-01T00:00:00Z", "product": "api-calls",
                 "type": "OVERWRITE", "overwrite_rate": {"rate_type": "FLAT", "price": Decimal("0.3")}}
    if overwrite_priority is not None:
        overwrite["priority"] = overwrite_priority
    return [overwrite,
            {"key": "volume", "starting_at": "2025-01-01T00:00:00Z", "product": "api-calls", "type": "TIERED",
             "priority": 1, "tiers": [{"multiplier": Decimal("0.5"), "size": 500}, {"multiplier": Decimal("0.25")}]}]


def test_overwrite_is_applied_before_a_tiered_override_whatever_the_priorities():
    # EXPLICIT (a TIERED override forces it): overwrites first, then TIERED and MULTIPLIER by
    # priority (reference §5.3). OVERWRITE at 0.3¢ with priority 10 against a TIERED override with
    # priority 1: 1000 calls × 0.3 = 300, one line, no tiers.
    # Catches: choosing by priority number across types (the TIERED override would win:
    # 500 × 0.5 × 0.5¢ = 125 + 500 × 0.25 × 0.5¢ = 62.5 -> 63, total 188).
    for priority in (10, None):  # an OVERWRITE without a priority still comes first
        invs = invoices(tiered_state(_tiered_and_overwrite(priority), "EXPLICIT"), _api_calls(1000),
                        "2025-02-01T00:00:00Z")
        (line,) = invs[0].line_items
        assert (line.quantity, line.unit_price, line.total, line.override, line.tier) == (
            D(1000), D("0.3"), D(300), "fixed-price", None)
    # The same TIERED override alone: 500 × 0.25 = 125 and 500 × 0.125 = 62.5 -> 63 (half up).
    tiered_only = _tiered_and_overwrite(None)[1:]
    invs = invoices(tiered_state(tiered_only, "EXPLICIT"), _api_calls(1000), "2025-02-01T00:00:00Z")
    assert [(li.tier, li.total) for li in invs[0].line_items] == [(1, D(125)), (2, D(63))]


def _acme(behavior="BILL_ON_NEXT_COLLECTION_DATE"):
    specs = example_specs()
    contract = specs["Contract"]["acme-pro-2025"]
    sub = contract["subscriptions"][0]
    sub["proration"]["invoice_behavior"] = behavior
    sub["quantity_updates"] = [{"starting_at": "2025-10-23T00:00:00Z", "quantity_delta": 1}]
    return state({"acme-pro-2025": contract})


def test_prorated_mid_period_seat_increase():
    # Pro Plan, ADVANCE, annual, 120000¢ a seat, 2 seats from 2025-04-23: 2 × 120000 = 240000
    # "invoiced in advance on 2025-04-23" (seed 002): statements are monthly on the 1st, so no usage
    # invoice is issued on Apr 23 and the charge gets an invoice of its own issued that day.
    # +1 seat on 2025-10-23: 182 of the period's 365 days remain (Oct 23 -> Apr 23):
    #   1 × 120000 × 182/365 = 59835.616... -> 59836, billed at the next collection date 2026-04-23,
    #   on the invoice issued then, next to the renewal 3 × 120000 = 360000: 419836.
    # (Before issue 13 both landed on the usage invoices Apr 23 - May 1 2025 and Apr 1 - May 1 2026.)
    invs = invoices(_acme(), [], "2026-05-01T00:00:00Z", customers=["acme"])
    first = invs[0]
    assert (first.type, first.issued_at.date().isoformat(), first.total) == ("SCHEDULED", "2025-04-23", D(240000))
    renewal = [i for i in invs if i.issued_at.date().isoformat() == "2026-04-23"][0]
    assert renewal.type == "SCHEDULED"
    assert sorted(li.total for li in renewal.line_items) == [D(59836), D(360000)]
    increase = [li for li in renewal.line_items if li.total == D(59836)][0]
    assert (increase.quantity, increase.starting_at.date().isoformat()) == (D(1), "2025-10-23")
    others = [i.total for i in invs if i not in (first, renewal)]
    assert others == [D(0)] * len(others)
    # BILL_IMMEDIATELY: the same 59836 on an invoice of its own issued at the change, 2025-10-23;
    # the October usage invoice stays at 0.
    invs = invoices(_acme("BILL_IMMEDIATELY"), [], "2025-11-01T00:00:00Z", customers=["acme"])
    (immediate,) = [i for i in invs if i.issued_at.date().isoformat() == "2025-10-23"]
    assert (immediate.type, [li.total for li in immediate.line_items]) == ("SCHEDULED", [D(59836)])
    october = [i for i in invs if i.type == "USAGE" and i.start_timestamp.date().isoformat() == "2025-10-01"][0]
    assert october.total == D(0)


def test_pooled_seat_credits_with_increase_and_rollover():
    # Bright Labs: a pool of 10000¢ per seat per month from 2025-06-01 (2 seats), seat increase
    # prorated; here with rollover_fraction 0.5 and +1 seat on 2025-06-16.
    specs = example_specs()
    contract = specs["Contract"]["brightlabs-pool-2025"]
    contract["recurring_credits"][0]["rollover_fraction"] = Decimal("0.5")
    contract["subscriptions"][0]["quantity_updates"] = [{"starting_at": "2025-06-16T00:00:00Z", "quantity_delta": 1}]
    st = state({"brightlabs-pool-2025": contract})
    events = [
        # June: seat a 6000 s × 2¢ = 12000 (Jun 5); seat b 5000 s × 2¢ = 10000 (Jun 20).
        ev("brightlabs-prod", "video_generation", "2025-06-05T00:00:00Z", seat_id="a", video_duration_seconds=6000),
        ev("brightlabs-prod", "video_generation", "2025-06-20T00:00:00Z", seat_id="b", video_duration_seconds=5000),
        # July: seat a 16000 s × 2¢ = 32000.
        ev("brightlabs-prod", "video_generation", "2025-07-02T00:00:00Z", seat_id="a", video_duration_seconds=16000),
    ]
    invs = invoices(st, events, "2025-08-01T00:00:00Z", customers=["brightlabs"])
    june = [i for i in invs if i.start_timestamp.date().isoformat() == "2025-06-01"][0]
    july = [i for i in invs if i.start_timestamp.date().isoformat() == "2025-07-01"][0]
    # June pool: 2 seats × 10000 = 20000, plus the third seat for Jun 16 - Jul 1, 15/30 of 10000 =
    # 5000: 25000. Usage 12000 + 10000 = 22000, all paid by the pool (either seat may use it): total 0.
    assert (june.subtotal, june.total) == (D(22000), D(0))
    # Unused: 25000 - 22000 = 3000; half rolls over: 1500. July pool: 3 seats × 10000 + 1500 =
    # 31500. Usage 32000 -> overage 32000 - 31500 = 500.
    assert (july.subtotal, july.total) == (D(32000), D(500))


def test_individual_seat_commits_with_rollover():
    # Copperworks: each of 3 seats has its own 1000¢ commit per month (Sep 1 - Nov 16), half of the
    # unused balance rolls over; the commit is invoiced 1000¢ per seat per month.
    events = [
        # September: seat1 200 s × 2¢ = 400; seat2 600 s × 2¢ = 1200; seat3 nothing.
        ev("copperworks-prod", "video_generation", "2025-09-10T00:00:00Z", seat_id="seat1@copperworks.example",
           video_duration_seconds=200),
        ev("copperworks-prod", "video_generation", "2025-09-11T00:00:00Z", seat_id="seat2@copperworks.example",
           video_duration_seconds=600),
        # October: seat1 650 s = 1300; seat3 700 s = 1400.
        ev("copperworks-prod", "video_generation", "2025-10-10T00:00:00Z", seat_id="seat1@copperworks.example",
           video_duration_seconds=650),
        ev("copperworks-prod", "video_generation", "2025-10-11T00:00:00Z", seat_id="seat3@copperworks.example",
           video_duration_seconds=700),
    ]
    invs = invoices(state(), events, "2025-12-01T00:00:00Z", customers=["copperworks"])
    by = {(i.type, i.start_timestamp.date().isoformat()): i for i in invs}
    # September usage invoice: seat1 400 paid by seat1's commit (600 left); seat2 1200: its own
    # commit pays 1000, 200 is overage (other seats' balances cannot pay it).
    # subtotal 400 + 1200 = 1600; total 1600 - 1400 = 200. (The Pro Plan, in advance, 3 seats ×
    # 120000 = 360000, is billed on Sep 1, the contract start, on the invoice issued then: below.)
    sep = by[("USAGE", "2025-09-01")]
    assert (sep.subtotal, sep.total) == (D(1600), D(200))
    assert {li.seat: -li.total for li in sep.line_items if li.kind == "drawdown"} == {
        "seat1@copperworks.example": D(400), "seat2@copperworks.example": D(1000)}
    # October balances: seat1 1000 + 0.5 × 600 = 1300; seat2 1000 + 0.5 × 0 = 1000;
    # seat3 1000 + 0.5 × 1000 = 1500. seat1 uses 1300 (covered only thanks to the rollover), seat3
    # uses 1400 of 1500: total 0.
    octo = by[("USAGE", "2025-10-01")]
    assert (octo.subtotal, octo.total) == (D(2700), D(0))
    # Commit invoices (no consolidation on this contract): Sep 1 and Oct 1: 3 × 1000 = 3000 each;
    # Nov 1 - Nov 16 is a prorated last period: 15/30 × 1000 = 500 per seat = 1500. Sep 1 also
    # carries the Pro Plan's advance charge, 360000 (issued the same day): 363000.
    assert [by[("SCHEDULED", d)].total for d in ("2025-09-01", "2025-10-01", "2025-11-01")] == [
        D(363000), D(3000), D(1500)]


def test_usage_before_an_alias_exists_is_attributed_once_the_alias_is_added():
    events = [ev("tiny-new-alias", "api_call", "2025-01-05T00:00:00Z") for _ in range(10)]
    st = tiered_state()
    from billing_reconciler.rating import rate_events
    from billing_reconciler.rating.timegrid import ts
    before = rate_events(st, events, ts("2025-02-01T00:00:00Z"))
    assert before.unattributed == ["tiny-new-alias"] and before.invoices[0].total == 0
    st.customers["tiny"]["ingest_aliases"] = ["tiny-new-alias"]
    after = rate_events(st, events, ts("2025-02-01T00:00:00Z"))
    # 10 calls × 0.5¢ = 5.
    assert after.unattributed == [] and after.invoices[0].total == D(5)
