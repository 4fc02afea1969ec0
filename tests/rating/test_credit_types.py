"""Credit types (pricing units), issue 13: named in manifests, checked against the backend at
plan time, sent by id and read back by name; rated one invoice per credit type, balances paying
only their own type, the rest converted at the rate card's conversion. Amounts by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_reconciler.emulator.refusals import RequestRefused
from billing_reconciler.money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME
from billing_reconciler.rating import BillingState, invoices_json
from billing_reconciler.service import add_credit_type, billing_state

from ..plan.support import START, Account, apply, converge, make_plan, only, small_account
from ..plan.support import sqlite_store  # noqa: F401 - fixture
from .helpers import D, ev, example_specs, invoices, summary

SEATS = "seat credits"
SEATS_ID = "d3cb2827-dcb5-44af-9354-947a7197b9a6"  # seed 002's custom credit type


# --- rating -------------------------------------------------------------------------------------


def _pool_state() -> BillingState:
    """Seed 002's seat-based credit pool, in a custom credit type: 2 seats of an annual Pro plan
    (ADVANCE, 120000¢ each), and from 2025-06-01 a recurring credit of 100 seat credits per seat
    per period into one pool. Video generation is priced at 1 seat credit per second; the card
    converts a seat credit to 2¢."""
    specs = example_specs()
    specs["RateCard"]["seat-units-2025"] = {
        "name": "Seat units 2025",
        "credit_type_conversions": [{"custom_credit_type": SEATS, "fiat_per_custom_credit": 2}],
        "rates": [
            {"product": "pro-plan", "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
             "rate_type": "SUBSCRIPTION", "price": 120000, "billing_frequency": "ANNUAL"},
            {"product": "video-generation", "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
             "rate_type": "FLAT", "price": 1, "credit_type": SEATS}]}
    specs["Customer"] = {"bright": {"name": "Bright Labs"}}
    specs["Contract"] = {"bright-2025": {
        "customer": "bright", "rate_card": "seat-units-2025", "starting_at": "2025-04-23T00:00:00Z",
        "subscriptions": [{
            "key": "pro-plan", "collection_schedule": "ADVANCE", "initial_quantity": 2, "temporary_id": "pro_plan_annual",
            "proration": {"is_prorated": True, "invoice_behavior": "BILL_ON_NEXT_COLLECTION_DATE"},
            "subscription_rate": {"product": "pro-plan", "billing_frequency": "ANNUAL"}}],
        "recurring_credits": [{
            "key": "seat-pool", "product": "seat-credit", "priority": 1, "starting_at": "2025-06-01T00:00:00Z",
            "access_amount": {"unit_price": 100, "credit_type": SEATS},
            "commit_duration": {"value": 1, "unit": "PERIODS"},
            "subscription_config": {"subscription_id": "pro_plan_annual", "allocation": "POOLED",
                                    "apply_seat_increase_config": {"is_prorated": True}}}]}}
    return BillingState.from_specs(specs)


def _video(when: str, seconds: int, seat: str):
    return ev("bright", "video_generation", when, video_duration_seconds=seconds, seat_id=seat)


def test_pooled_seat_credits_in_a_custom_credit_type_burn_down_then_the_rest_is_converted():
    # Statement periods (monthly, first of month): Apr 23 - May 1, May, June, July.
    # Pool: 2 seats x 100 = 200 seat credits per period from June 1 (each period's grant expires
    # with it: commit_duration 1 period).
    # May: 30 s = 30 seat credits, no pool yet -> all 30 converted: 30 x 2¢ = 60¢ on May's USD invoice.
    # June: 150 s (seat a) + 100 s (seat b) = 250 seat credits; the pool pays 200; 50 converted:
    #   50 x 2¢ = 100¢.
    # July: 120 s = 120 seat credits, the July pool (200) pays all 120: nothing converted.
    # Pro plan: 2 x 120000 = 240000¢ invoiced in advance on the start, 2025-04-23 (seed 002).
    # Catches: usage in seat credits billed as cents (250¢ in June), a USD invoice mixing units,
    # a pool that ignores the credit type, the conversion not applied (or at 1:1).
    events = [_video("2025-05-10T00:00:00Z", 30, "a"), _video("2025-06-10T00:00:00Z", 150, "a"),
              _video("2025-06-11T00:00:00Z", 100, "b"), _video("2025-07-10T00:00:00Z", 120, "a")]
    invs = invoices(_pool_state(), events, "2025-08-01T00:00:00Z")
    assert [(i.credit_type, *s) for i, s in zip(invs, summary(invs))] == [
        (USD_CREDIT_TYPE_NAME, "bright-2025", "SCHEDULED", "2025-04-23", D(240000), D(240000)),
        (USD_CREDIT_TYPE_NAME, "bright-2025", "USAGE", "2025-04-23", D(0), D(0)),
        (USD_CREDIT_TYPE_NAME, "bright-2025", "USAGE", "2025-05-01", D(60), D(60)),
        (SEATS, "bright-2025", "USAGE", "2025-05-01", D(30), D(0)),
        (USD_CREDIT_TYPE_NAME, "bright-2025", "USAGE", "2025-06-01", D(100), D(100)),
        (SEATS, "bright-2025", "USAGE", "2025-06-01", D(250), D(0)),
        (USD_CREDIT_TYPE_NAME, "bright-2025", "USAGE", "2025-07-01", D(0), D(0)),
        (SEATS, "bright-2025", "USAGE", "2025-07-01", D(120), D(0)),
    ]
    june_usd, june_seats = invs[4], invs[5]
    assert [(li.kind, li.quantity, li.unit_price, li.total) for li in june_usd.line_items] == [
        ("conversion", D(50), D(2), D(100))]
    assert [(li.kind, li.total) for li in june_seats.line_items] == [
        ("usage", D(150)), ("usage", D(100)), ("drawdown", D(-200)), ("conversion", D(-50))]
    # Each invoice says its credit type; both of June's are issued when June ends.
    shown = invoices_json([june_usd, june_seats])["invoices"]
    assert [(i["credit_type"], i["issued_at"]) for i in shown] == [
        (USD_CREDIT_TYPE_NAME, "2025-07-01T00:00:00Z"), (SEATS, "2025-07-01T00:00:00Z")]


def test_a_balance_pays_only_charges_in_its_own_credit_type():
    # The pool is in USD cents now (200¢ per period): it cannot pay usage priced in seat credits.
    # June: 250 seat credits, none paid -> 250 x 2¢ = 500¢ converted; the pool is untouched.
    # Catches: a drawdown that ignores credit types (the pool paying 200 "cents" of seat credits).
    state = _pool_state()
    del state.contracts["bright-2025"]["recurring_credits"][0]["access_amount"]["credit_type"]
    events = [_video("2025-06-10T00:00:00Z", 150, "a"), _video("2025-06-11T00:00:00Z", 100, "b")]
    invs = [i for i in invoices(state, events, "2025-07-01T00:00:00Z") if i.start_timestamp.month == 6]
    assert [(i.credit_type, i.subtotal, i.total) for i in invs] == [
        (USD_CREDIT_TYPE_NAME, D(500), D(500)), (SEATS, D(250), D(0))]
    assert not any(li.kind == "drawdown" for i in invs for li in i.line_items)


def test_invoices_text_shows_a_custom_credit_type_in_its_own_units():
    # July's seat-credit invoice: 120 seat credits of usage, paid by the pool; never "$1.20".
    # (mutation: amounts of every invoice formatted as dollars -> "$1.20"; units added to the dollar total)
    from billing_reconciler.rating.invoice_text import render_invoices
    from billing_reconciler.rating.invoices import invoices_total

    invs = invoices(_pool_state(), [_video("2025-07-10T00:00:00Z", 120, "a")], "2025-08-01T00:00:00Z")
    july = [i for i in invs if i.start_timestamp.month == 7]
    text = render_invoices(july, [], invoices_total(july))
    assert "in seat credits" in text and "120 seat credits" in text and "$1.20" not in text
    assert invoices_total([i for i in july if i.credit_type == "seat credits"]) == 0


# --- plan and apply -----------------------------------------------------------------------------


def _account_in_seat_credits(tmp_path: Path) -> Account:
    docs = small_account(1)
    account = Account(tmp_path, docs)
    card = account.spec("RateCard/cloud-2024")
    card["credit_type_conversions"] = [{"custom_credit_type": SEATS, "fiat_per_custom_credit": 2}]
    card["rates"][0]["credit_type"] = SEATS
    contract = account.spec("Contract/c1-2024")
    contract["credits"] = [{"key": "seat-grant", "product": "prepaid-commit", "applicable_product_tags": ["cloud"],
                            "access_schedule": {"credit_type": SEATS, "schedule_items": [
                                {"amount": 300, "starting_at": START, "ending_before": "2025-11-01T00:00:00Z"}]}}]
    return account


def test_plan_refuses_a_credit_type_the_backend_does_not_list_at_its_field(sqlite_store, tmp_path):
    # Nobody made "seat credits" in the backend: each field naming it is an error at its line.
    # Catches: a plan that sends the name as an id (the apply would fail midway), or an error
    # without file and line.
    account = _account_in_seat_credits(tmp_path)
    plan = make_plan(sqlite_store, account)
    assert plan.errored
    lines = (account.manifests_dir / "catalog.yaml").read_text().splitlines()
    wanted = sorted(i + 1 for i, line in enumerate(lines) if SEATS in line)  # conversion + rate
    found = sorted(e.line for e in plan.errors if e.file.endswith("catalog.yaml"))
    assert found == wanted and len(wanted) == 2
    messages = {e.path: e.message for e in plan.errors}
    assert "no credit type named 'seat credits'" in messages["spec.rates[0].credit_type"]
    assert "credit_type_conversions[0].custom_credit_type" in " ".join(messages)
    assert "spec.credits[0].access_schedule.credit_type" in messages


def test_credit_types_are_sent_by_id_and_read_back_by_name(sqlite_store, tmp_path):
    # Made in the "UI" (the emulator's admin call) under seed 002's id: the plan sends that id in
    # the rate, the conversion and the credit's access schedule; the backend's objects read back
    # as the manifests say (apply then plan is empty), and rating sees the names.
    # Catches: names sent as ids, readers leaving ids (a plan that never converges), the
    # credit type dropped on the way (rated as USD cents).
    add_credit_type(sqlite_store, SEATS, credit_type_id=SEATS_ID)
    account = _account_in_seat_credits(tmp_path)
    plan = make_plan(sqlite_store, account)
    assert not plan.errored, [str(e) for e in plan.errors]
    card = only(plan, "create_rate_card").request.body
    assert card["credit_type_conversions"] == [{"custom_credit_type_id": SEATS_ID, "fiat_per_custom_credit": 2}]
    assert only(plan, "add_rates").request.body["rates"][0]["credit_type_id"] == SEATS_ID
    created = only(plan, "create_contract").request.body
    assert created["credits"][0]["access_schedule"]["credit_type_id"] == SEATS_ID
    apply(sqlite_store, plan)
    converge(sqlite_store, account)
    state = billing_state(sqlite_store)
    assert state.rate_cards["cloud-2024"]["rates"][0]["credit_type"] == SEATS
    assert state.contracts["c1-2024"]["credits"][0]["access_schedule"]["credit_type"] == SEATS
    # 1000 API calls in November at 0.5 seat credits x 0.95 (the contract's override) = 475 seat
    # credits; the grant pays 300; 175 x 2¢ = 350¢ converted. The $1,000 commit is USD: it pays
    # none of it (its purchase, dated Nov 1, is on an invoice of its own: no usage invoice ends then).
    events = [ev("c1-prod", "api_call", "2024-11-05T00:00:00Z", region="US") for _ in range(1000)]
    nov = [i for i in invoices(state, events, "2024-12-01T00:00:00Z") if i.type == "USAGE"]
    assert [(i.credit_type, i.subtotal) for i in nov] == [(USD_CREDIT_TYPE_NAME, D(350)),
                                                          (SEATS, D(475))]


def test_the_emulator_holds_credit_types_the_backend_lists_and_refuses_a_name_taken(sqlite_store):
    # Catches: a second credit type of the same name (names are how manifests find them), an id
    # that is no UUID (the API's credit type ids are), a made type the backend does not list.
    made = add_credit_type(sqlite_store, SEATS)
    with pytest.raises(RequestRefused) as refusal:
        add_credit_type(sqlite_store, SEATS)
    assert refusal.value.status == 409
    with pytest.raises(RequestRefused) as refusal:
        add_credit_type(sqlite_store, "tokens", credit_type_id="tokens")
    assert refusal.value.status == 400 and refusal.value.field == "id"
    from billing_reconciler.apply.backends.embedded import EmbeddedBackend
    from billing_reconciler.plan.credit_types import read_credit_types

    with sqlite_store.reading() as conn:
        listed = read_credit_types(EmbeddedBackend().session(conn))
    assert listed == {USD_CREDIT_TYPE_NAME: USD_CREDIT_TYPE_ID, SEATS: made["id"]}


def test_cli_plan_names_the_missing_credit_type_then_invoices_show_it_in_its_units(tmp_path):
    # The whole path as a user runs it (real subprocesses): a plan naming a credit type the
    # backend lacks fails at the field (exit 1, file:line, no traceback); once it is made in the
    # "UI", apply, ingest and invoices. November: 1000 API calls x 0.5 x 0.95 = 475 seat credits,
    # the 300-credit grant pays 300, 175 x 2¢ = 350¢ = $3.50 on the USD invoice.
    import json

    from tests.conftest import run_cli

    account = _account_in_seat_credits(tmp_path)
    account.write()
    url = f"sqlite:///{tmp_path}/state.db"
    run_cli("--store", url, "init", cwd=tmp_path, check=True)
    refused = run_cli("--store", url, "plan", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    shown = refused.stdout + refused.stderr
    assert "catalog.yaml:" in shown and "no credit type named 'seat credits'" in shown

    made = run_cli("--store", url, "emulator", "add-credit-type", SEATS, "--id", SEATS_ID, cwd=tmp_path, check=True)
    assert made.stdout.strip() == f"Credit type 'seat credits' made: {SEATS_ID}."
    taken = run_cli("--store", url, "emulator", "add-credit-type", SEATS, cwd=tmp_path)
    assert taken.returncode == 1 and "already exists" in taken.stderr and "Traceback" not in taken.stderr
    run_cli("--store", url, "apply", "--auto-approve", cwd=tmp_path, check=True)
    events = [{"transaction_id": f"t-{n}", "customer_id": "c1-prod", "event_type": "api_call",
               "timestamp": "2024-11-05T00:00:00Z", "properties": {"region": "US"}} for n in range(1000)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    run_cli("--store", url, "ingest", "events.jsonl", cwd=tmp_path, check=True)
    out = run_cli("--store", url, "invoices", "--start", "2024-11-01T00:00:00Z", "--end", "2024-12-01T00:00:00Z",
                  "--format", "json", cwd=tmp_path, check=True)
    usage = [(i["credit_type"], i["subtotal"], i["total"]) for i in json.loads(out.stdout)["invoices"]
             if i["type"] == "USAGE"]
    assert usage == [(USD_CREDIT_TYPE_NAME, "350", "350"), (SEATS, "475", "0")]
    text = run_cli("--store", url, "invoices", "--start", "2024-11-01T00:00:00Z", "--end", "2024-12-01T00:00:00Z",
                   cwd=tmp_path, check=True).stdout
    assert "475 seat credits" in text and "$3.50" in text


def test_a_percentage_is_in_the_credit_type_of_the_spend_and_an_overwrite_can_change_the_type():
    # A COMPOSITE "priority support" at 10% of video generation's spend. July: 120 s x 1 = 120
    # seat credits (the pool pays them) -> support 10% x 120 = 12 seat credits, on the seat-credit
    # invoice; the pool (any product) pays those too: 132 in all, under July's 200.
    # Then an OVERWRITE from July 1 prices video at 3¢ USD: 120 x 3 = 360¢ on the USD invoice, the
    # seat-credit pool cannot pay it, and support is 10% x 360 = 36¢, USD too.
    # Catches: a percentage of seat credits billed in cents (12¢ on the USD invoice); the
    # overwrite's credit type ignored (360 seat credits).
    state = _pool_state()
    state.products["priority-support"] = {"name": "Priority support", "type": "COMPOSITE",
                                          "composite_products": ["video-generation"]}
    state.rate_cards["seat-units-2025"]["rates"].append(
        {"product": "priority-support", "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
         "rate_type": "PERCENTAGE", "price": 0.1})
    events = [_video("2025-07-10T00:00:00Z", 120, "a")]
    july = [i for i in invoices(state, events, "2025-08-01T00:00:00Z") if i.start_timestamp.month == 7]
    assert [(i.credit_type, i.subtotal, i.total) for i in july] == [
        (USD_CREDIT_TYPE_NAME, D(0), D(0)), (SEATS, D(132), D(0))]
    state.contracts["bright-2025"]["overrides"] = [{
        "key": "usd-video", "starting_at": "2025-07-01T00:00:00Z", "product": "video-generation", "type": "OVERWRITE",
        "overwrite_rate": {"rate_type": "FLAT", "price": 3, "credit_type": USD_CREDIT_TYPE_NAME}}]
    july = [i for i in invoices(state, events, "2025-08-01T00:00:00Z") if i.start_timestamp.month == 7]
    assert [(i.credit_type, i.subtotal, i.total) for i in july] == [(USD_CREDIT_TYPE_NAME, D(396), D(396))]
