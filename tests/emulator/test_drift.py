"""The backend is the truth: changes made behind the tool's back, through the emulator, show up
in the next plan as drift with the operation that undoes them, and an apply of that plan
converges. And a request the emulator refuses fails the apply with the operation, the field and
the API's message, leaving the store and the emulator exactly as they were."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billing_reconciler.apply.applier import ApplyError
from billing_reconciler.apply.backends.embedded import EmbeddedBackend
from billing_reconciler.store.store import Store

from ..plan.support import Account, apply, converge, customer, make_plan, only, small_account
from ..plan.support import store, store_url  # noqa: F401 - fixtures


def out_of_band(store: Store, *requests: tuple[str, str, dict]) -> list[dict]:
    """Someone changes the account in the billing app: requests the tool never planned."""
    with store.transaction(holder="billing app") as conn:
        emulator = EmbeddedBackend().emulator(conn)
        responses = [emulator.execute(method, path, body) for method, path, body in requests]
        emulator.flush()
    return responses


def emulator_rows(store: Store) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT id, type, revision, archived, body FROM emulator_objects "
                                                    "ORDER BY id"))]


@pytest.fixture
def applied(store, tmp_path):
    docs = small_account(2)
    docs = [customer("c1", configs=("aws", "stripe")) if d["metadata"]["name"] == "c1" and d["kind"] == "Customer"
            else d for d in docs]
    account = Account(tmp_path, docs)
    converge(store, account)
    return store.snapshot(), account


def test_an_override_added_out_of_band_is_drift_removed_by_the_plan(store, applied):
    snapshot, account = applied
    contract, customer_ = snapshot.objects["Contract/c1-2024"], snapshot.objects["Customer/c1"]
    product = snapshot.objects["Product/api-calls"].remote_id
    out_of_band(store, ("POST", "/v2/contracts/edit", {
        "customer_id": customer_.remote_id, "contract_id": contract.remote_id,
        "add_overrides": [{"starting_at": "2024-12-01T00:00:00Z", "type": "MULTIPLIER", "multiplier": 0.5,
                           "override_specifiers": [{"product_id": product}]}]}))
    added = [o["id"] for o in store.backend_body(contract.remote_id)["overrides"]
             if o["id"] != contract.item_id("overrides", "cloud-discount")]
    assert len(added) == 1

    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Contract/c1-2024"]
    op = only(plan, "edit_contract")
    assert op.drift and op.request.body["remove_overrides"] == [{"id": added[0]}]
    assert "add_overrides" not in op.request.body
    apply(store, plan)
    assert [o["id"] for o in store.backend_body(contract.remote_id)["overrides"]] == \
        [contract.item_id("overrides", "cloud-discount")]
    assert not make_plan(store, account).operations


def test_a_name_changed_out_of_band_is_set_back(store, applied):
    snapshot, account = applied
    customer_id = snapshot.objects["Customer/c2"].remote_id
    out_of_band(store, ("POST", f"/v1/customers/{customer_id}/setName", {"name": "Renamed in the app"}))
    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Customer/c2"]
    [change] = plan.drift[0].changes
    assert (change.path, change.before, change.after) == ("name", "Renamed in the app", "Customer c2")
    op = only(plan, "set_customer_name")
    assert op.drift and op.request.body == {"name": "Customer c2"}
    apply(store, plan)
    assert store.backend_body(customer_id)["name"] == "Customer c2"
    assert not make_plan(store, account).operations


def test_a_billing_provider_configuration_archived_out_of_band_is_added_again(store, applied):
    snapshot, account = applied
    customer_ = snapshot.objects["Customer/c1"]
    stripe = customer_.item_id("customer_billing_provider_configurations", "stripe")
    out_of_band(store, ("POST", "/v1/archiveCustomerBillingProviderConfigurations", {
        "customer_id": customer_.remote_id, "customer_billing_provider_configuration_ids": [stripe]}))
    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Customer/c1"]
    op = only(plan, "set_customer_billing_provider_configurations")
    assert op.drift and [c["billing_provider"] for c in op.request.body["data"]] == ["stripe"]
    apply(store, plan)
    again = store.snapshot().objects["Customer/c1"]
    fresh = again.item_id("customer_billing_provider_configurations", "stripe")
    assert fresh not in (None, stripe)
    live = [c["id"] for c in store.backend_body(customer_.remote_id)["customer_billing_provider_configurations"]
            if c.get("archived_at") is None]
    assert fresh in live and stripe not in live
    assert not make_plan(store, account).operations


def test_a_contract_archived_out_of_band_is_made_again(store, applied):
    snapshot, account = applied
    contract = snapshot.objects["Contract/c2-2024"]
    out_of_band(store, ("POST", "/v1/contracts/archive", {
        "customer_id": snapshot.objects["Customer/c2"].remote_id, "contract_id": contract.remote_id,
        "void_invoices": False}))
    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Contract/c2-2024"]
    assert only(plan, "create_contract").address == "Contract/c2-2024"
    apply(store, plan)
    assert store.snapshot().objects["Contract/c2-2024"].remote_id != contract.remote_id
    assert not make_plan(store, account).operations


def test_a_refused_request_fails_the_apply_and_changes_nothing(store, applied):
    snapshot, account = applied
    account.spec("Customer/c1")["name"] = "Renamed"
    account.spec("Contract/c2-2024")["overrides"][0]["multiplier"] = 0.5
    plan = make_plan(store, account)
    # Someone archives the product the new override names, between plan and apply: the emulator
    # still knows it, so instead make the edit name a contract that does not exist.
    op = only(plan, "edit_contract")
    import dataclasses

    from billing_reconciler.plan.operations import Request

    broken = dataclasses.replace(op, request=Request(op.request.method, op.request.path, {
        **op.request.body, "contract_id": "00000000-0000-4000-8000-000000000000"}))
    plan = dataclasses.replace(plan, operations=tuple(broken if o is op else o for o in plan.operations))
    rows, serial = emulator_rows(store), store.state()[1]
    with pytest.raises(ApplyError) as caught:
        apply(store, plan)
    message = str(caught.value)
    assert f"(edit_contract {op.address})" in message
    assert "contract_id: contract not found: 00000000-0000-4000-8000-000000000000 (HTTP 404)" in message
    assert emulator_rows(store) == rows and store.state()[1] == serial
    assert store.backend_body(snapshot.objects["Customer/c1"].remote_id)["name"] == "Customer c1"


def test_a_body_outside_the_schema_is_refused_naming_the_field(store, applied):
    snapshot, account = applied
    account.spec("Customer/c1")["name"] = "Renamed"
    plan = make_plan(store, account)
    op = only(plan, "set_customer_name")
    import dataclasses

    from billing_reconciler.plan.operations import Request

    broken = dataclasses.replace(op, request=Request(op.request.method, op.request.path, {"name": "Renamed", "nmae": "Renamed"}))
    plan = dataclasses.replace(plan, operations=(broken,))
    rows = emulator_rows(store)
    with pytest.raises(ApplyError, match=r"nmae: unknown field 'nmae'; did you mean 'name'\? \(HTTP 400\)"):
        apply(store, plan)
    assert emulator_rows(store) == rows
