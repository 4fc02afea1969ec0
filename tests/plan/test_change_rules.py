"""The change rules of DESIGN §4, each planned against a store that holds the applied account:
which operation, with which request body, and what refuses to plan."""

from __future__ import annotations

from decimal import Decimal

from billing_reconciler.plan.operations import Action
from billing_reconciler.plan.render import render
from billing_reconciler.service import billing_state

from .support import START, Account, apply, catalog, commit, contract, converge, credit, customer, make_plan, only, \
    override, scheduled_charge


def applied(store, account: Account):
    converge(store, account)
    return store.snapshot()


def test_changed_override_is_removed_and_added_in_one_edit_contract(store, account):
    before = applied(store, account).objects["Contract/c1-2024"]
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    plan = make_plan(store, account)
    edit = only(plan, "edit_contract")
    assert edit.address == "Contract/c1-2024" and edit.action == Action.UPDATE
    assert edit.request.method == "POST" and edit.request.path == "/v2/contracts/edit"
    body = edit.request.body
    assert body["customer_id"] == store.snapshot().objects["Customer/c1"].remote_id
    assert body["contract_id"] == before.remote_id
    assert body["remove_overrides"] == [{"id": before.item_id("overrides", "cloud-discount")}]
    assert body["add_overrides"] == [{"starting_at": START, "applicable_product_tags": ["cloud"], "type": "MULTIPLIER",
                                      "multiplier": Decimal("0.9")}]
    assert set(body) == {"customer_id", "contract_id", "remove_overrides", "add_overrides"}
    # Only the field that differs is listed (0.95 -> 0.9), marked as forcing the item's replacement.
    [change] = edit.changes
    assert (change.path, change.before, change.after, change.note) == \
        ("overrides[cloud-discount].multiplier", Decimal("0.95"), Decimal("0.9"), "replace")
    assert "~ overrides[cloud-discount].multiplier: 0.95 -> 0.9  # forces replacement" in render(plan, "text")

    apply(store, plan)
    after = store.snapshot().objects["Contract/c1-2024"]
    overrides = [i for i in after.items if i.list_name == "overrides"]
    assert [(i.key, i.archived) for i in overrides] == [("cloud-discount", True), ("cloud-discount", False)]
    assert after.item_id("overrides", "cloud-discount") != before.item_id("overrides", "cloud-discount")
    converge(store, account)


def test_all_changes_to_one_contract_go_in_one_edit_contract(store, tmp_path):
    account = Account(tmp_path, catalog() + [customer("c1"), contract("c1-2024", "c1", credits=("welcome",))])
    before = applied(store, account).objects["Contract/c1-2024"]
    spec = account.spec("Contract/c1-2024")
    spec["overrides"][0]["multiplier"] = 0.9
    spec["overrides"].append(override("network-discount", "0.8", tag="network"))
    del spec["commits"]
    del spec["credits"]
    spec["scheduled_charges"] = [scheduled_charge("support-fee", 5000)]
    spec["ending_before"] = "2026-11-01T00:00:00Z"
    plan = make_plan(store, account)
    edit = only(plan, "edit_contract")
    body = edit.request.body
    ids = {name: before.item_id(*name.split("/")) for name in
           ("commits/prepaid", "credits/welcome", "scheduled_charges/platform-fee", "overrides/cloud-discount")}
    assert body["archive_commits"] == [{"id": ids["commits/prepaid"]}]
    assert body["archive_credits"] == [{"id": ids["credits/welcome"]}]
    assert body["archive_scheduled_charges"] == [{"id": ids["scheduled_charges/platform-fee"]}]
    assert body["remove_overrides"] == [{"id": ids["overrides/cloud-discount"]}]
    assert [o["multiplier"] for o in body["add_overrides"]] == [Decimal("0.8"), Decimal("0.9")]
    assert [c["name"] for c in body["add_scheduled_charges"]] == ["Charge support-fee"]
    assert body["update_contract_end_date"] == "2026-11-01T00:00:00Z"
    notes = {c.path: c.note for c in edit.changes}
    assert notes["commits[prepaid]"] == notes["credits[welcome]"] == notes["scheduled_charges[platform-fee]"] == "archive"
    assert notes["overrides[cloud-discount].multiplier"] == "replace"
    assert notes["overrides[network-discount]"] == ""

    apply(store, plan)
    after = store.snapshot().objects["Contract/c1-2024"]
    archived = {(i.list_name, i.key) for i in after.items if i.archived}
    assert {("commits", "prepaid"), ("credits", "welcome"), ("scheduled_charges", "platform-fee")} <= archived
    assert after.item_id("commits", "prepaid") is None  # archived, never deleted: the row is still there
    converge(store, account)


def test_removed_commit_credit_and_scheduled_charge_are_archived(store, tmp_path):
    account = Account(tmp_path, catalog() + [customer("c1"), contract("c1-2024", "c1", credits=("welcome",))])
    applied(store, account)
    for field, op_key in (("credits", "archive_credits"), ("scheduled_charges", "archive_scheduled_charges"),
                          ("commits", "archive_commits")):
        del account.spec("Contract/c1-2024")[field]
        plan = make_plan(store, account)
        edit = only(plan, "edit_contract")
        assert set(edit.request.body) == {"customer_id", "contract_id", op_key}
        assert plan.summary() == {"create": 0, "update": 1, "replace": 0, "archive": 0}
        apply(store, plan)
        converge(store, account)


def test_added_then_removed_credit(store, account):
    applied(store, account)
    account.spec("Contract/c2-2024")["credits"] = [credit("goodwill", 2500)]
    plan = make_plan(store, account)
    edit = only(plan, "edit_contract", "Contract/c2-2024")
    [added] = edit.request.body["add_credits"]
    assert added["product_id"] == store.snapshot().objects["Product/prepaid-commit"].remote_id
    assert added["access_schedule"]["schedule_items"][0]["amount"] == 2500
    apply(store, plan)
    credit_id = store.snapshot().objects["Contract/c2-2024"].item_id("credits", "goodwill")
    assert credit_id

    del account.spec("Contract/c2-2024")["credits"]
    plan = make_plan(store, account)
    assert only(plan, "edit_contract").request.body["archive_credits"] == [{"id": credit_id}]
    apply(store, plan)
    converge(store, account)


def test_removed_billing_provider_configuration_is_archived(store, tmp_path):
    account = Account(tmp_path, catalog() + [customer("c1", configs=("aws", "stripe")), contract("c1-2024", "c1")])
    snapshot = applied(store, account)
    stripe_id = snapshot.objects["Customer/c1"].item_id("customer_billing_provider_configurations", "stripe")
    account.spec("Customer/c1")["customer_billing_provider_configurations"].pop()  # stripe
    plan = make_plan(store, account)
    op = only(plan, "archive_customer_billing_provider_configurations")
    assert op.address == "Customer/c1" and op.request.path == "/v1/archiveCustomerBillingProviderConfigurations"
    assert op.request.body == {"customer_id": snapshot.objects["Customer/c1"].remote_id,
                               "customer_billing_provider_configuration_ids": [stripe_id]}
    assert [c.note for c in op.changes] == ["archive"]
    assert [o.op for o in plan.operations] == ["archive_customer_billing_provider_configurations"]
    apply(store, plan)
    converge(store, account)


def test_added_billing_provider_configuration_is_set(store, account):
    snapshot = applied(store, account)
    account.spec("Customer/c1")["customer_billing_provider_configurations"].append(
        customer("x", configs=("stripe",))["spec"]["customer_billing_provider_configurations"][0])
    op = only(make_plan(store, account), "set_customer_billing_provider_configurations")
    [entry] = op.request.body["data"]
    assert entry["customer_id"] == snapshot.objects["Customer/c1"].remote_id
    assert entry["billing_provider"] == "stripe" and "key" not in entry


def test_changed_usage_filter_is_set_usage_filter_with_its_starting_at(store, account):
    snapshot = applied(store, account)
    account.spec("Contract/c1-2024")["usage_filter"] = {"group_key": "region", "group_values": ["US", "EU"],
                                                        "starting_at": "2025-01-01T00:00:00Z"}
    plan = make_plan(store, account)
    op = only(plan, "set_usage_filter")
    assert op.request.path == "/v1/contracts/setUsageFilter"
    assert op.request.body == {"customer_id": snapshot.objects["Customer/c1"].remote_id,
                               "contract_id": snapshot.objects["Contract/c1-2024"].remote_id,
                               "group_key": "region", "group_values": ["US", "EU"],
                               "starting_at": "2025-01-01T00:00:00Z"}
    assert [o.op for o in plan.operations] == ["set_usage_filter"]
    apply(store, plan)
    schedule = [{"group_values": sorted(p.group_values), "starting_at": p.starting_at}
                for p in billing_state(store).usage_filters["c1-2024"]]
    assert [(f["group_values"], f["starting_at"]) for f in schedule] == [
        (["US"], START), (["EU", "US"], "2025-01-01T00:00:00Z")]
    converge(store, account)


def test_usage_filter_needs_a_later_starting_at(store, account):
    applied(store, account)
    account.spec("Contract/c1-2024")["usage_filter"]["group_values"] = ["EU"]  # same starting_at
    plan = make_plan(store, account)
    assert plan.errored and not plan.operations
    [problem] = plan.errors
    assert problem.path == "spec.usage_filter.starting_at" and "after the current filter's start" in problem.message


def test_immutable_field_is_refused_with_its_location_and_the_way_out(store, account):
    applied(store, account)
    del account.spec("Contract/c1-2024")["scheduled_charges_on_usage_invoices"]
    account.spec("Contract/c2-2024")["overrides"][0]["multiplier"] = 0.9  # an unrelated, valid change
    plan = make_plan(store, account)
    assert plan.errored and not plan.applyable
    [problem] = plan.errors
    assert problem.address == "Contract/c1-2024"
    assert problem.path == "spec.scheduled_charges_on_usage_invoices"
    assert problem.file.endswith("customers.yaml") and problem.line > 1
    assert "cannot be changed after Contract/c1-2024 is created" in problem.message
    assert "add a new Contract with a new key" in problem.message
    assert "--replace Contract/c1-2024" in problem.message
    text_view = render(plan, "text")
    assert "Error: " in text_view and "Plan failed: 1 error(s); nothing can be applied." in text_view


def test_immutable_field_can_be_replaced_on_request(store, account):
    snapshot = applied(store, account)
    del account.spec("Contract/c1-2024")["scheduled_charges_on_usage_invoices"]
    plan = make_plan(store, account, replace=("Contract/c1-2024",))
    assert not plan.errored
    assert [(o.op, o.action) for o in plan.operations] == [("archive_contract", Action.REPLACE),
                                                           ("create_contract", Action.REPLACE)]
    assert plan.summary()["replace"] == 1
    apply(store, plan)
    after = store.snapshot().objects["Contract/c1-2024"]
    assert after.remote_id != snapshot.objects["Contract/c1-2024"].remote_id
    assert "scheduled_charges_on_usage_invoices" not in after.spec
    converge(store, account)


def test_changed_customer_of_a_contract_is_refused(store, account):
    applied(store, account)
    account.spec("Contract/c1-2024")["customer"] = "c2"
    account.spec("Contract/c1-2024")["billing_provider_configuration"] = {"billing_provider_configuration": "aws"}
    plan = make_plan(store, account)
    assert [p.path for p in plan.errors] == ["spec.customer"]


def test_commit_type_cannot_change(store, account):
    applied(store, account)
    account.spec("Contract/c1-2024")["commits"][0]["type"] = "POSTPAID"
    plan = make_plan(store, account)
    assert plan.errored
    assert [p.path for p in plan.errors] == ["spec.commits[0].type"]


def test_rates_are_append_only(store, account):
    snapshot = applied(store, account)
    rates = account.spec("RateCard/cloud-2024")["rates"]
    rates[0]["price"] = 0.6
    plan = make_plan(store, account)
    assert plan.errored and not plan.operations
    [problem] = plan.errors
    assert problem.path == "spec.rates[0]" and "append-only" in problem.message

    # The way out: end the old rate where the new one starts, and add the new one.
    rates[0]["price"] = 0.5
    rates[0]["ending_before"] = "2025-01-01T00:00:00Z"
    rates.append({"product": "api-calls", "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
                  "rate_type": "FLAT", "price": 0.6})
    plan = make_plan(store, account)
    assert not plan.errored
    op = only(plan, "add_rates")
    assert op.request.body == {"rate_card_id": snapshot.objects["RateCard/cloud-2024"].remote_id,
                               "rates": [{"product_id": snapshot.objects["Product/api-calls"].remote_id,
                                          "starting_at": "2025-01-01T00:00:00Z", "entitled": True,
                                          "rate_type": "FLAT", "price": Decimal("0.6")}]}
    apply(store, plan)
    converge(store, account)

    del rates[0]
    plan = make_plan(store, account)
    assert [p.path for p in plan.errors] == ["spec.rates"] and "cannot be deleted" in plan.errors[0].message


def test_rate_card_name_is_updated_in_place(store, account):
    applied(store, account)
    account.spec("RateCard/cloud-2024")["name"] = "Cloud 2024 (renamed)"
    op = only(make_plan(store, account), "update_rate_card")
    assert op.request.body["name"] == "Cloud 2024 (renamed)" and op.action == Action.UPDATE


def test_customer_name_aliases_and_custom_fields_update_in_place(store, account):
    snapshot = applied(store, account)
    spec = account.spec("Customer/c1")
    spec["name"] = "New name"
    spec["ingest_aliases"] = ["c1-prod", "c1-eu"]
    spec["custom_fields"] = {"sfdc_account_id": "sfdc-1"}
    plan = make_plan(store, account)
    customer_id = snapshot.objects["Customer/c1"].remote_id
    assert [o.op for o in plan.operations] == ["set_customer_name", "set_ingest_aliases", "set_custom_field_values"]
    assert only(plan, "set_customer_name").request.path == f"/v1/customers/{customer_id}/setName"
    # The customer id is in the path only: the API refuses it as an unknown body field.
    assert only(plan, "set_ingest_aliases").request.path == f"/v1/customers/{customer_id}/setIngestAliases"
    assert only(plan, "set_ingest_aliases").request.body == {"ingest_aliases": ["c1-prod", "c1-eu"]}
    assert only(plan, "set_custom_field_values").request.body == {
        "entity": "customer", "entity_id": customer_id, "custom_fields": {"sfdc_account_id": "sfdc-1"}}
    assert plan.summary() == {"create": 0, "update": 1, "replace": 0, "archive": 0}
    apply(store, plan)
    converge(store, account)
    del account.spec("Customer/c1")["custom_fields"]
    op = only(make_plan(store, account), "delete_custom_field_values")
    assert op.request.body == {"entity": "customer", "entity_id": customer_id, "keys": ["sfdc_account_id"]}


def test_added_commit_is_added_with_product_id(store, account):
    snapshot = applied(store, account)
    account.spec("Contract/c1-2024")["commits"].append(commit("extra", 5000))
    edit = only(make_plan(store, account), "edit_contract")
    [added] = edit.request.body["add_commits"]
    assert added["product_id"] == snapshot.objects["Product/prepaid-commit"].remote_id
    assert added["type"] == "PREPAID" and "key" not in added


def test_subscription_name_and_proration_cannot_change(store, tmp_path):
    # update_subscriptions has no name or proration field in the OpenAPI document
    # (UpdateSubscriptionInput): such a change is refused with the way out, never sent as a field
    # the API refuses.
    from tests.emulator.bodies import ROOT, account_from

    account = account_from(ROOT / "manifests", tmp_path)
    applied(store, account)
    sub = account.spec("Contract/acme-pro-2025")["subscriptions"][0]
    sub["name"] = "Pro Plan, renamed"
    sub["proration"]["invoice_behavior"] = "BILL_IMMEDIATELY"
    plan = make_plan(store, account)
    assert plan.errored and not plan.operations
    # Problems come in file order, which depends on how the account's documents are written.
    messages = sorted((str(e) for e in plan.errors), key=lambda m: "proration" in m)
    assert len(messages) == 2
    assert "spec.subscriptions[0].name: name of subscription 'pro-plan' cannot be changed after it is created" in messages[0]
    assert "spec.subscriptions[0].proration: proration of subscription 'pro-plan'" in messages[1]
    assert "keep it, set its ending_before, and add the changed subscription under a new key" in messages[1]


def test_subscription_added_later_gets_its_scheduled_quantities_in_a_second_edit(store, tmp_path):
    from tests.emulator.bodies import ROOT, account_from

    account = account_from(ROOT / "manifests", tmp_path)
    applied(store, account)
    subs = account.spec("Contract/acme-pro-2025")["subscriptions"]
    subs.append(dict(subs[0], key="extra-plan", quantity_updates=[{"starting_at": "2025-06-01T00:00:00Z",
                                                                    "quantity": 4}]))
    plan = make_plan(store, account)
    first, second = [o for o in plan.operations if o.op == "edit_contract"]
    assert "quantity_updates" not in first.request.body["add_subscriptions"][0]
    assert second.request.body["update_subscriptions"] == [
        {"subscription_id": "${Contract/acme-pro-2025.subscriptions[extra-plan].id}",
         "quantity_updates": [{"starting_at": "2025-06-01T00:00:00Z", "quantity": 4}]}]
    apply(store, plan)
    converge(store, account)


def test_a_recurring_credit_field_that_cannot_change_advises_what_the_planner_accepts(store, tmp_path):
    # One fact in one place (contracts.how_to_change / how_to_stop): the advice for a recurring
    # credit's product change must be a change that plans. It used to say "remove it and add it
    # under a new key", and removing one is refused ("keep it and set its ending_before").
    # Mutation caught: either message drifting from the other, or advice that is itself refused.
    import copy

    from tests.emulator.bodies import ROOT, account_from

    account = account_from(ROOT / "manifests", tmp_path)
    applied(store, account)
    spec = account.spec("Contract/brightlabs-pool-2025")
    original = copy.deepcopy(spec["recurring_credits"][0])

    spec["recurring_credits"][0]["product"] = "prepaid-commit"
    [problem] = make_plan(store, account).errors
    assert "product of recurring credit 'seat-pool' cannot be changed after it is created; keep it, set its " \
           "ending_before, and add the changed recurring credit under a new key" in problem.message

    # The old advice (remove it, add it under a new key) is refused, pointing the same way.
    spec["recurring_credits"] = [{**original, "key": "seat-pool-2", "product": "prepaid-commit"}]
    [problem] = make_plan(store, account).errors
    assert "recurring credit 'seat-pool' was removed, but a recurring credit cannot be archived; keep it and set " \
           "its ending_before" in problem.message

    # Following the advice plans: the old one ended, the changed one added under a new key.
    spec["recurring_credits"] = [{**original, "ending_before": "2026-06-01T00:00:00Z"},
                                 {**original, "key": "seat-pool-2", "product": "prepaid-commit",
                                  "starting_at": "2026-06-01T00:00:00Z"}]
    plan = make_plan(store, account)
    assert not plan.errored, [str(e) for e in plan.errors]
    body = only(plan, "edit_contract").request.body
    assert [u["ending_before"] for u in body["update_recurring_credits"]] == ["2026-06-01T00:00:00Z"]
    assert len(body["add_recurring_credits"]) == 1
