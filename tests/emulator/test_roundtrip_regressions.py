"""The bugs the round-trip property (test_roundtrip.py) found, each pinned by a small example."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_reconciler.money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME

from ..plan.support import START, Account, apply, commit, converge, doc, make_plan, ops_of, small_account
from ..plan.support import store, store_url  # noqa: F401 - fixtures


def _commit_specific_override(key: str, commit_key: str) -> dict:
    return {"key": key, "starting_at": START, "type": "MULTIPLIER", "multiplier": 0.5, "is_commit_specific": True,
            "override_specifiers": [{"product_tags": ["cloud"], "commits": [commit_key]}]}


def test_a_commit_specific_override_in_a_new_contract_follows_the_create_in_an_edit(store, tmp_path):
    # The commit has no id before create_contract runs: the override is added by the edit after it.
    account = Account(tmp_path, small_account(1))
    account.spec("Contract/c1-2024")["overrides"].append(_commit_specific_override("on-prepaid", "prepaid"))
    plan = make_plan(store, account)
    create, edit = ops_of(plan, address="Contract/c1-2024")
    assert create.op == "create_contract" and [o["multiplier"] for o in create.request.body["overrides"]] == [
        Decimal("0.95")]
    assert edit.op == "edit_contract"
    [added] = edit.request.body["add_overrides"]
    assert added["override_specifiers"] == [{"product_tags": ["cloud"],
                                              "commit_ids": ["${Contract/c1-2024.commits[prepaid].id}"]}]
    apply(store, plan)
    contract = store.snapshot().objects["Contract/c1-2024"]
    api = store.backend_body(contract.remote_id)
    on_prepaid = [o for o in api["overrides"] if o["id"] == contract.item_id("overrides", "on-prepaid")]
    assert on_prepaid[0]["override_specifiers"][0]["commit_ids"] == [contract.item_id("commits", "prepaid")]
    converge(store, account)


def test_a_commit_specific_override_on_a_commit_added_in_the_same_edit_waits_for_its_id(store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    spec = account.spec("Contract/c1-2024")
    spec["commits"].append(commit("extra", 5000))
    spec["overrides"].append(_commit_specific_override("on-extra", "extra"))
    plan = make_plan(store, account)
    first, second = ops_of(plan, "edit_contract")
    assert "add_commits" in first.request.body and "add_overrides" not in first.request.body
    assert second.request.body["add_overrides"][0]["override_specifiers"][0]["commit_ids"] == [
        "${Contract/c1-2024.commits[extra].id}"]
    apply(store, plan)
    converge(store, account)


def test_a_composite_product_is_created_after_the_products_it_is_made_of(store, tmp_path):
    docs = small_account(1) + [doc("Product", "a-bundle", {"name": "Bundle", "type": "COMPOSITE",
                                                           "composite_products": ["api-calls"]})]
    plan = make_plan(store, Account(tmp_path, docs))
    order = [o.address for o in plan.operations if o.op == "create_product"]
    assert order.index("Product/api-calls") < order.index("Product/a-bundle")
    converge(store, Account(tmp_path, docs))


def test_a_seat_based_subscription_without_initial_seats_sends_the_empty_list_the_api_requires(store, tmp_path):
    docs = small_account(1)
    docs[4]["spec"]["rates"].append({"product": "platform-fee", "starting_at": "2024-01-01T00:00:00Z", "entitled": True,
                                     "rate_type": "SUBSCRIPTION", "price": 1000, "billing_frequency": "MONTHLY"})
    account = Account(tmp_path, docs)
    account.spec("Contract/c1-2024")["subscriptions"] = [{
        "key": "seats", "collection_schedule": "ADVANCE", "proration": {"is_prorated": True},
        "subscription_rate": {"product": "platform-fee", "billing_frequency": "MONTHLY"},
        "quantity_management_mode": "SEAT_BASED", "seat_config": {"initial_seat_ids": [], "seat_group_key": "user"}}]
    plan = make_plan(store, account)
    [sub] = ops_of(plan, "create_contract")[0].request.body["subscriptions"]
    assert sub["seat_config"] == {"initial_seat_ids": [], "seat_group_key": "user"}
    converge(store, account)


def test_removing_a_threshold_discount_clears_it_with_null(store, tmp_path):
    account = Account(tmp_path, small_account(1))
    account.spec("Contract/c1-2024")["spend_threshold_configuration"] = {
        "threshold_amount": 10000, "is_enabled": True, "commit": {"product": "prepaid-commit"},
        "payment_gate_config": {"payment_gate_type": "EXTERNAL"}, "discount_configuration": {"payment_fraction": 0.1}}
    converge(store, account)
    del account.spec("Contract/c1-2024")["spend_threshold_configuration"]["discount_configuration"]
    plan = make_plan(store, account)
    [edit] = ops_of(plan, "edit_contract")
    assert edit.request.body["update_spend_threshold_configuration"]["discount_configuration"] is None
    apply(store, plan)
    converge(store, account)


def test_credit_type_conversions_cannot_change_after_the_rate_card_is_created(store, tmp_path):
    # rate-cards/update takes name, description and aliases only (no add_credit_type_conversions).
    from billing_reconciler.service import add_credit_type

    add_credit_type(store, "cloud consumption units")
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    account.spec("RateCard/cloud-2024")["credit_type_conversions"] = [
        {"custom_credit_type": "cloud consumption units", "fiat_per_custom_credit": 2}]
    plan = make_plan(store, account)
    assert plan.errored and "credit_type_conversions cannot be changed" in str(plan.errors[0])


def test_the_default_credit_type_written_out_is_no_change_to_rates_and_commits(store, tmp_path):
    # The backend reads back USD as no credit type; a manifest that names it must not look changed
    # (it used to refuse the rate as edited, and the commit's access_schedule as changed).
    docs = small_account(1)
    docs[4]["spec"]["rates"][0]["credit_type"] = USD_CREDIT_TYPE_NAME
    account = Account(tmp_path, docs)
    spec = account.spec("Contract/c1-2024")
    spec["commits"][0]["access_schedule"]["credit_type"] = USD_CREDIT_TYPE_NAME
    converge(store, account)
    account.spec("RateCard/cloud-2024")["name"] = "Cloud 2024, renamed"
    spec["commits"][0]["name"] = "Renamed commit"
    plan = make_plan(store, account)
    assert not plan.errored, [str(e) for e in plan.errors]
    assert {o.op for o in plan.operations} == {"update_rate_card", "edit_contract"}
    apply(store, plan)
    converge(store, account)


def test_the_emulator_refuses_a_subscription_config_naming_no_subscription_of_the_contract(store, tmp_path):
    # Without this, an emulator that forgot to link temporary_ids passed the round trip: the reader
    # gives back the unresolved temporary id, which is what the manifest says.
    import pytest

    from billing_reconciler.apply.backends.embedded import EmbeddedBackend
    from billing_reconciler.emulator.refusals import RequestRefused

    account = Account(tmp_path, small_account(1))
    converge(store, account)
    snapshot = store.snapshot()
    contract, customer_ = snapshot.objects["Contract/c1-2024"], snapshot.objects["Customer/c1"]
    product = snapshot.objects["Product/prepaid-commit"].remote_id
    credit = {"product_id": product, "priority": 1, "starting_at": START,
              "access_amount": {"unit_price": 100, "credit_type_id": USD_CREDIT_TYPE_ID},
              "commit_duration": {"value": 1},
              "subscription_config": {"subscription_id": "sub-unknown", "apply_seat_increase_config": {"is_prorated": True}}}
    with store.transaction(holder="test") as conn:
        emulator = EmbeddedBackend().emulator(conn)
        with pytest.raises(RequestRefused) as refusal:
            emulator.execute("POST", "/v2/contracts/edit", {"customer_id": customer_.remote_id,
                                                            "contract_id": contract.remote_id,
                                                            "add_recurring_credits": [credit]})
    assert refusal.value.status == 404 and "subscription_config.subscription_id" in str(refusal.value)


@pytest.mark.parametrize("named_at_create", [True, False], ids=["named-then-left-out", "left-out-then-named"])
def test_the_usd_fiat_credit_type_named_or_left_out_beside_a_rename_is_only_the_rename(store, tmp_path,
                                                                                       named_at_create):
    # The API fills in USD when no fiat credit type is given, so naming USD and leaving the field out
    # mean the same: the immutable-field check compares them in the comparable form, not raw
    # (mutation: compare raw values -> "fiat_credit_type cannot be changed", an errored plan).
    account = Account(tmp_path, small_account(1))
    card = next(d for d in account.docs if d["kind"] == "RateCard")
    if named_at_create:
        card["spec"]["fiat_credit_type"] = USD_CREDIT_TYPE_NAME
    converge(store, account)
    if named_at_create:
        del card["spec"]["fiat_credit_type"]
    else:
        card["spec"]["fiat_credit_type"] = USD_CREDIT_TYPE_NAME
    card["spec"]["name"] = "Cloud 2024 (renamed)"
    plan = make_plan(store, account)
    assert not plan.errored, plan.errors
    [update] = plan.operations
    assert update.op == "update_rate_card" and update.request.body["name"] == "Cloud 2024 (renamed)"
    assert "fiat_credit_type_id" not in update.request.body
