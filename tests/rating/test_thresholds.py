"""Oracle cases for threshold billing (issue 13; seeds 003/004, reference §3.10 and §5.11): a spend
threshold issues a THRESHOLD invoice when the usage accrued reaches it; a prepaid balance threshold
recharges the balance. Amounts are cents, by hand. Data export is 9¢/GB (example catalog).
Thresholds are evaluated per UTC day: a crossing is at the end of the day it happened.
"""

from __future__ import annotations

from billing_reconciler.rating import invoices_json

from .helpers import D, ev, invoices, state, summary

GATE = {"payment_gate_type": "NONE"}


def _contract(**terms) -> dict:
    return {"customer": "plg", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z", **terms}


def _export(when: str, gb: int):
    return ev("plg", "data_export", when, gb=gb)


def _rated(contract: dict, events, until: str):
    return invoices(state({"plg-2025": contract}, {"plg": {"name": "PLG"}}, keep_examples=False), events, until)


def _spend(**extra) -> dict:
    return {"threshold_amount": 5000, "is_enabled": True, "payment_gate_config": GATE,
            "commit": {"product": "prepaid-commit", "name": "Threshold charge"}, **extra}


SPEND_EVENTS = [_export("2025-01-03T10:00:00Z", 300), _export("2025-01-05T10:00:00Z", 300),
                _export("2025-01-20T10:00:00Z", 100), _export("2025-02-02T10:00:00Z", 600)]


def test_a_spend_threshold_invoices_the_accrued_usage_when_it_is_reached():
    # Threshold $50 = 5000.
    # Jan 3: 300 GB x 9 = 2700 accrued. Jan 5: +2700 = 5400 >= 5000: a THRESHOLD invoice of 5400
    # issued at the end of Jan 5 (2025-01-06), and the 5400 of usage is paid by its commit.
    # Jan 20: 100 GB = 900 accrued, below the threshold: billed by January's usage invoice
    # (subtotal 2700 + 2700 + 900 = 6300, less the 5400 the threshold invoice paid = 900).
    # Feb 2: 600 GB = 5400 (January's 900 was billed on Feb 1, so the accrual starts again at 0)
    # -> a THRESHOLD invoice of 5400 at 2025-02-03; February's usage invoice: 5400 - 5400 = 0.
    # Catches: no threshold invoice; the usage billed twice (January total 6300); the crossing
    # dated at the period end; the accrual not reset by the usage invoice (a Feb 2 crossing at
    # 900 + 5400 = 6300).
    invs = _rated(_contract(spend_threshold_configuration=_spend()), SPEND_EVENTS, "2025-03-01T00:00:00Z")
    assert summary(invs) == [
        ("plg-2025", "USAGE", "2025-01-01", D(6300), D(900)),
        ("plg-2025", "THRESHOLD", "2025-01-06", D(5400), D(5400)),
        ("plg-2025", "USAGE", "2025-02-01", D(5400), D(0)),
        ("plg-2025", "THRESHOLD", "2025-02-03", D(5400), D(5400)),
    ]
    shown = invoices_json(invs)["invoices"]
    assert [i["issued_at"] for i in shown] == ["2025-02-01T00:00:00Z", "2025-01-06T00:00:00Z",
                                               "2025-03-01T00:00:00Z", "2025-02-03T00:00:00Z"]
    (line,) = invs[1].line_items
    assert (line.name, line.product, line.kind, line.total) == ("Threshold charge", "prepaid-commit",
                                                               "threshold_charge", D(5400))
    january = invs[0]
    assert [(li.kind, li.total, li.paid_by) for li in january.line_items] == [
        ("usage", D(2700), {"spend_threshold_configuration": D(2700)}),
        ("usage", D(2700), {"spend_threshold_configuration": D(2700)}),
        ("usage", D(900), {}),
        ("drawdown", D(-5400), {}),
    ]


def test_a_disabled_spend_threshold_changes_nothing_and_a_discount_bills_its_fraction():
    # Disabled: January is simply 6300, February 5400, no threshold invoices.
    # Catches: is_enabled ignored.
    invs = _rated(_contract(spend_threshold_configuration=_spend(is_enabled=False)), SPEND_EVENTS,
                  "2025-03-01T00:00:00Z")
    assert summary(invs) == [("plg-2025", "USAGE", "2025-01-01", D(6300), D(6300)),
                             ("plg-2025", "USAGE", "2025-02-01", D(5400), D(5400))]
    # payment_fraction 0.85: each 5400 commit is billed 5400 x 0.85 = 4590; it still pays 5400
    # of usage (January's usage invoice still totals 900).
    # Catches: the discount not applied, or applied to the commit's amount (January total 900 + 810).
    invs = _rated(_contract(spend_threshold_configuration=_spend(discount_configuration={"payment_fraction": 0.85})),
                  SPEND_EVENTS, "2025-03-01T00:00:00Z")
    assert [(t, s, total) for _, t, _, s, total in summary(invs)] == [
        ("USAGE", D(6300), D(900)), ("THRESHOLD", D(4590), D(4590)), ("USAGE", D(5400), D(0)),
        ("THRESHOLD", D(4590), D(4590))]


def _prepaid(amount: int = 5000) -> dict:
    return {"key": "starter", "type": "PREPAID", "product": "prepaid-commit", "name": "Starter balance",
            "access_schedule": {"schedule_items": [
                {"amount": amount, "starting_at": "2025-01-01T00:00:00Z", "ending_before": "2026-01-01T00:00:00Z"}]},
            "invoice_schedule": {"schedule_items": [{"amount": amount, "timestamp": "2025-01-01T00:00:00Z"}]}}


RECHARGE = {"threshold_amount": 1000, "recharge_to_amount": 5000, "is_enabled": True, "payment_gate_config": GATE,
            "commit": {"product": "prepaid-commit", "name": "Auto-recharge"}}


def test_a_prepaid_balance_threshold_recharges_to_the_recharge_amount():
    # Starter balance 5000 (bought Jan 1); recharge to 5000 when the balance falls to 1000.
    # Jan 3: 300 GB = 2700 from the starter -> balance 2300. Jan 5: 200 GB = 1800 -> 500 <= 1000:
    # at the end of Jan 5 a commit of 5000 - 500 = 4500 is bought (THRESHOLD invoice 2025-01-06).
    # Jan 10: 400 GB = 3600: the recharge (priority 100, before the starter without priority) pays
    # it -> balance 900 + 500 = 1400. Jan 12: 100 GB = 900 from the recharge -> 0 + 500 = 500 <=
    # 1000: another 4500 at 2025-01-13.
    # January's usage: 2700 + 1800 + 3600 + 900 = 9000, all paid (starter 4500, recharges 4500): 0.
    # Catches: no recharge (January total 9000 - 5000 = 4000), a recharge of the full 5000, the
    # recharge dated at the period end, the threshold compared with spend instead of balance.
    events = [_export("2025-01-03T10:00:00Z", 300), _export("2025-01-05T10:00:00Z", 200),
              _export("2025-01-10T10:00:00Z", 400), _export("2025-01-12T10:00:00Z", 100)]
    invs = _rated(_contract(commits=[_prepaid()], prepaid_balance_threshold_configuration=RECHARGE), events,
                  "2025-02-01T00:00:00Z")
    assert summary(invs) == [
        ("plg-2025", "SCHEDULED", "2025-01-01", D(5000), D(5000)),
        ("plg-2025", "USAGE", "2025-01-01", D(9000), D(0)),
        ("plg-2025", "THRESHOLD", "2025-01-06", D(4500), D(4500)),
        ("plg-2025", "THRESHOLD", "2025-01-13", D(4500), D(4500)),
    ]
    drawdowns = {li.commit: li.total for li in invs[1].line_items if li.kind == "drawdown"}
    assert drawdowns == {"starter": D(-4500), "prepaid_balance_threshold_configuration": D(-4500)}


def test_a_balance_that_falls_exactly_to_the_threshold_recharges():
    # Starter 4600; the threshold is 1000 ("recharge when the balance falls to this",
    # metronome-model.md 3.10). Jan 3: 400 GB x 9 = 3600 -> balance 1000 = the threshold: at the end
    # of Jan 3 a commit of 5000 - 1000 = 4000 is bought (THRESHOLD invoice 2025-01-04).
    # Catches: the balance compared with `>=` (equal to the threshold does not recharge).
    invs = _rated(_contract(commits=[_prepaid(4600)], prepaid_balance_threshold_configuration=RECHARGE),
                  [_export("2025-01-03T10:00:00Z", 400)], "2025-02-01T00:00:00Z")
    assert summary(invs) == [
        ("plg-2025", "SCHEDULED", "2025-01-01", D(4600), D(4600)),
        ("plg-2025", "USAGE", "2025-01-01", D(3600), D(0)),
        ("plg-2025", "THRESHOLD", "2025-01-04", D(4000), D(4000)),
    ]


def test_a_prepaid_balance_threshold_is_evaluated_when_the_contract_starts():
    # No prepaid commit: the balance is 0 <= 1000 at the start, so 5000 is bought at once
    # (seed text: "Toggling to true will result an immediate evaluation"). Jan 3: 300 GB = 2700
    # paid by it -> 2300, above the threshold: nothing more.
    # Catches: thresholds evaluated only after usage (no invoice on Jan 1, January billed 2700).
    invs = _rated(_contract(prepaid_balance_threshold_configuration=RECHARGE),
                  [_export("2025-01-03T10:00:00Z", 300)], "2025-02-01T00:00:00Z")
    assert summary(invs) == [
        ("plg-2025", "THRESHOLD", "2025-01-01", D(5000), D(5000)),
        ("plg-2025", "USAGE", "2025-01-01", D(2700), D(0)),
    ]
    assert invs[0].issued_at.isoformat() == "2025-01-01T00:00:00+00:00"


def test_thresholds_applied_to_the_backend_are_read_back_and_rated(tmp_path):
    # The path a user takes: manifests -> plan -> apply on the emulator -> readers -> rating.
    # API calls are 0.5¢ each (tests.plan.support's catalog). Spend threshold 500¢: 1000 calls on
    # Nov 5 = 500 >= 500 -> a THRESHOLD invoice of 500 at the end of Nov 5 (2024-11-06), and the
    # November usage invoice nets it: 500 - 500 = 0.
    # Catches: the threshold lost on the way to the backend or back (no THRESHOLD invoice), a
    # plan that never converges on it.
    from billing_reconciler.service import billing_state
    from billing_reconciler.store.store import Store

    from ..plan.support import Account, catalog, contract, converge, customer

    docs = [*catalog(), customer("c1"),
            contract("c1-2024", "c1", commits=(), overrides={}, charges=(), usage_filter=None)]
    docs[-1]["spec"]["spend_threshold_configuration"] = {
        "threshold_amount": 500, "is_enabled": True, "payment_gate_config": GATE,
        "commit": {"product": "prepaid-commit", "name": "Threshold charge"}}
    store = Store(f"sqlite:///{tmp_path}/state.db")
    try:
        store.init()
        converge(store, Account(tmp_path, docs))
        applied = billing_state(store)
    finally:
        store.close()
    assert applied.contracts["c1-2024"]["spend_threshold_configuration"]["commit"]["product"] == "prepaid-commit"
    events = [ev("c1-prod", "api_call", "2024-11-05T09:00:00Z", region="US") for _ in range(1000)]
    invs = invoices(applied, events, "2024-12-01T00:00:00Z")
    assert summary(invs) == [("c1-2024", "USAGE", "2024-11-01", D(500), D(0)),
                             ("c1-2024", "THRESHOLD", "2024-11-06", D(500), D(500))]


def test_a_prepaid_balance_threshold_in_a_custom_credit_type_recharges_in_it():
    # custom_credit_type "seat credits" (2¢ each on the card): the threshold (100), the recharge-to
    # amount (400) and the commit are in seat credits. Video generation costs 1 seat credit per
    # second. At the start the balance is 0 <= 100: 400 seat credits are bought; the THRESHOLD
    # invoice is in seat credits and converted: 400 x 2¢ = 800¢ on its USD invoice.
    # Jan 3: 350 s = 350 seat credits from the recharge -> 50 <= 100: 350 more bought at the end
    # of Jan 3 (700¢).
    # Catches: the recharge in cents (a 400¢ USD invoice), the balance counted across credit types.
    from .test_credit_types import SEATS, _pool_state

    base = _pool_state()
    contract = {"customer": "bright", "rate_card": "seat-units-2025", "starting_at": "2025-01-01T00:00:00Z",
                "prepaid_balance_threshold_configuration": {**RECHARGE, "threshold_amount": 100,
                                                            "recharge_to_amount": 400, "custom_credit_type": SEATS}}
    base.contracts = {"bright-2025": contract}
    invs = invoices(base, [ev("bright", "video_generation", "2025-01-03T10:00:00Z", video_duration_seconds=350,
                              seat_id="a")], "2025-02-01T00:00:00Z")
    threshold = [(i.credit_type, i.start_timestamp.date().isoformat(), i.subtotal, i.total)
                 for i in invs if i.type == "THRESHOLD"]
    assert threshold == [("USD (cents)", "2025-01-01", D(800), D(800)), (SEATS, "2025-01-01", D(400), D(0)),
                         ("USD (cents)", "2025-01-04", D(700), D(700)), (SEATS, "2025-01-04", D(350), D(0))]
