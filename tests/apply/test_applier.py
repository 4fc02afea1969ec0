"""The applier on real stores: stale plans refused, all-or-nothing applies that name the failing
operation, placeholders resolved, batched writes that keep the operations' order."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from sqlalchemy import text

from billing_reconciler import canonical
from billing_reconciler.apply.applier import ApplyError
from billing_reconciler.store.writer import StoreWriter
from billing_reconciler.plan.operations import Request
from billing_reconciler.plan.planfile import StalePlan, read_plan, write_plan
from billing_reconciler.redaction import NO_MARKS
from billing_reconciler.store.store import LockTimeout, NotInitialized, Store

from ..plan.support import Account, CountingBackend, apply, contract, converge, customer, make_plan, only, \
    small_account


def state_of(store: Store) -> dict:
    """Everything an apply may write, as plain data."""
    with store.engine.connect() as conn:
        def rows(query: str) -> list:
            return [tuple(r) for r in conn.execute(text(query))]

        return {
            "state": rows("SELECT lineage, serial FROM state"),
            "objects": rows("SELECT kind, key, remote_id, body, applied_digest, archived_at FROM objects ORDER BY id"),
            "sub_items": rows("SELECT owner_id, list_name, key, remote_id, body, archived_at FROM sub_items ORDER BY id"),
            "edits": rows("SELECT serial, op, address, request FROM edits ORDER BY id"),
        }


# --- stale plans ---------------------------------------------------------------------------------

def test_plan_is_refused_when_the_serial_moved(store, account):
    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    early = make_plan(store, account)
    account.spec("Customer/c2")["name"] = "Someone else's change"
    apply(store, make_plan(store, account))  # serial 1 -> 2
    before = state_of(store)
    with pytest.raises(StalePlan, match="made at store serial 1, and the store is now at serial 2"):
        apply(store, early)
    assert state_of(store) == before


def test_plan_is_refused_by_a_store_of_another_lineage(store, account, tmp_path):
    plan = make_plan(store, account)
    other = Store(f"sqlite:///{tmp_path}/other/state.db")
    other_lineage, _ = other.init()
    with pytest.raises(StalePlan, match=f"made against store lineage {store.state()[0]}.*this store is {other_lineage}"):
        apply(other, plan)
    assert other.snapshot().objects == {} and other.state() == (other_lineage, 0)
    other.close()


def test_plan_made_against_an_uninitialised_store_is_refused_after_init(store_url, account):
    fresh = Store(store_url)
    plan = make_plan(fresh, account)
    assert plan.lineage is None and plan.serial == 0 and plan.operations
    with pytest.raises(NotInitialized, match="run `billing-reconciler init`"):
        apply(fresh, plan)
    fresh.init()
    with pytest.raises(StalePlan, match="empty, uninitialised store"):
        apply(fresh, plan)
    assert fresh.snapshot().objects == {} and fresh.state()[1] == 0
    fresh.close()


def test_saved_plan_file_applies_and_then_is_stale(store, account, tmp_path):
    plan = make_plan(store, account)
    path = tmp_path / "plan.json"
    write_plan(plan, path, NO_MARKS, store.digest_key())  # no secrets in this account: the bodies as planned
    saved = read_plan(path)
    assert (saved.lineage, saved.serial, saved.manifests_digest) == (plan.lineage, plan.serial, plan.manifests_digest)
    assert [o.to_json() for o in saved.operations] == [o.to_json() for o in plan.operations]
    assert len(json.loads(path.read_text())["operations"]) == len(plan.operations)
    apply(store, saved)
    assert not make_plan(store, account).operations
    with pytest.raises(StalePlan):
        apply(store, read_plan(path))


# --- all or nothing -------------------------------------------------------------------------------

@pytest.mark.parametrize("fail_at", [1, 7, 12])
def test_failure_in_the_middle_rolls_back_everything_and_names_the_operation(store, tmp_path, fail_at):
    account = Account(tmp_path, small_account(3))
    plan = make_plan(store, account)
    assert len(plan.operations) == 12
    before = state_of(store)
    backend = CountingBackend(fail_at=fail_at)
    with pytest.raises(ApplyError) as caught:
        apply(store, plan, backend)
    failing = plan.operations[fail_at - 1]
    assert caught.value.index == fail_at - 1 and caught.value.op is failing
    message = str(caught.value)
    assert message.startswith(f"operation {fail_at} ({failing.op} {failing.address}) failed: "
                              f"billing API said no to call {fail_at}")
    assert "Nothing was applied" in message
    assert state_of(store) == before
    # The lock is free and the same plan still applies.
    apply(store, plan)
    assert store.state()[1] == 1 and len(store.snapshot().objects) == 11


def test_failed_update_leaves_the_previous_state(store, account):
    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    account.spec("Customer/c2")["name"] = "Renamed"
    account.add(customer("c3"), contract("c3-2024", "c3"))
    plan = make_plan(store, account)
    before = state_of(store)
    with pytest.raises(ApplyError):
        apply(store, plan, CountingBackend(fail_at=len(plan.operations)))  # the last one
    assert state_of(store) == before
    converge(store, account)


def _install_write_trap(store: Store) -> None:
    """Make the database refuse to store a sub-item keyed 'explode' (as a full disk might refuse any)."""
    with store.engine.begin() as conn:
        if store.is_sqlite:
            conn.execute(text("CREATE TRIGGER no_explode BEFORE INSERT ON sub_items WHEN NEW.key = 'explode' "
                              "BEGIN SELECT RAISE(ABORT, 'explode is not allowed'); END"))
        else:
            conn.execute(text("CREATE FUNCTION no_explode() RETURNS trigger AS $$ BEGIN "
                              "IF NEW.key = 'explode' THEN RAISE EXCEPTION 'explode is not allowed'; END IF; "
                              "RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER no_explode BEFORE INSERT ON sub_items FOR EACH ROW "
                              "EXECUTE FUNCTION no_explode()"))


def test_store_write_failure_rolls_back_and_names_the_operation_that_wrote(store, tmp_path):
    docs = small_account(3)
    account = Account(tmp_path, docs)
    account.spec("Contract/c2-2024")["commits"][0]["key"] = "explode"
    _install_write_trap(store)
    plan = make_plan(store, account)
    before = state_of(store)
    with pytest.raises(ApplyError) as caught:
        apply(store, plan)
    assert (caught.value.op.op, caught.value.op.address) == ("create_contract", "Contract/c2-2024")
    assert "explode is not allowed" in str(caught.value)
    assert state_of(store) == before


def test_operation_on_an_object_missing_from_the_store_fails_the_apply(store, account):
    converge(store, account)
    account.spec("Customer/c1")["name"] = "Renamed"
    plan = make_plan(store, account)
    with store.engine.begin() as conn:  # someone deleted it behind our back
        conn.execute(text("DELETE FROM sub_items WHERE owner_id = (SELECT id FROM objects WHERE key = 'c1')"))
        conn.execute(text("DELETE FROM objects WHERE kind = 'Customer' AND key = 'c1'"))
    before = state_of(store)
    with pytest.raises(ApplyError, match=r"operation 1 \(set_customer_name Customer/c1\) failed: .*not in the store"):
        apply(store, plan)
    assert state_of(store) == before


def test_apply_waits_for_the_lock_then_fails(store, account):
    plan = make_plan(store, account)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction(holder="someone else", lock_timeout=5):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(LockTimeout, match="another apply is running"):
            apply(store, plan, lock_timeout=0.5)
    finally:
        release.set()
        thread.join(30)
    assert store.snapshot().objects == {}
    apply(store, plan)


# --- placeholders ---------------------------------------------------------------------------------

def test_applier_resolves_placeholders_to_the_ids_just_assigned(store, account):
    backend = CountingBackend()
    plan = make_plan(store, account)
    apply(store, plan, backend)
    snapshot = store.snapshot()
    sent = {(op.op, op.address): request for op, request in zip(plan.operations, backend.requests, strict=True)}
    contract_body = sent[("create_contract", "Contract/c1-2024")].body
    customer = snapshot.objects["Customer/c1"]
    assert contract_body["customer_id"] == customer.remote_id
    assert contract_body["rate_card_id"] == snapshot.objects["RateCard/cloud-2024"].remote_id
    assert contract_body["commits"][0]["product_id"] == snapshot.objects["Product/prepaid-commit"].remote_id
    assert contract_body["billing_provider_configuration"]["billing_provider_configuration_id"] == \
        customer.item_id("customer_billing_provider_configurations", "aws")
    rates = sent[("add_rates", "RateCard/cloud-2024")].body
    assert rates["rate_card_id"] == snapshot.objects["RateCard/cloud-2024"].remote_id
    assert rates["rates"][0]["product_id"] == snapshot.objects["Product/api-calls"].remote_id
    # What was sent is what the history records; no placeholder is left anywhere.
    history = {(r["op"], r["address"]): r for r in store.history()}
    assert history[("create_contract", "Contract/c1-2024")]["request"]["body"] == contract_body
    assert all("${" not in canonical.dumps(r["request"]) for r in history.values())
    assert history[("create_contract", "Contract/c1-2024")]["response"]["data"]["id"] == \
        snapshot.objects["Contract/c1-2024"].remote_id
    # The plan itself is unchanged: it still shows the placeholders it was reviewed with.
    assert only(plan, "create_contract", "Contract/c1-2024").request.body["customer_id"] == "${Customer/c1.id}"


def test_apply_time_values_are_filled_in(store, account):
    converge(store, account)
    account.spec("Product/platform-fee")["name"] = "Platform charge"
    plan = make_plan(store, account)
    op = only(plan, "update_product")
    assert op.request.body["starting_at"] == "${apply.next_hour}"
    backend = CountingBackend()
    apply(store, plan, backend)
    [request] = backend.requests
    assert request.body["starting_at"].endswith(":00:00Z") and "${" not in request.body["starting_at"]


def test_unknown_placeholder_fails_the_apply(store, account):
    converge(store, account)
    account.spec("Customer/c1")["name"] = "Renamed"
    plan = make_plan(store, account)
    op = plan.operations[0]
    broken = dataclasses.replace(op, request=Request(op.request.method, op.request.path,
                                                     {**op.request.body, "customer_id": "${Customer/ghost.id}"}))
    plan = dataclasses.replace(plan, operations=(broken,))
    with pytest.raises(ApplyError, match="no id known for Customer/ghost"):
        apply(store, plan)


# --- batched writes --------------------------------------------------------------------------------

def test_batched_writes_keep_the_order_of_operations(store, tmp_path, monkeypatch):
    """Small batches force many flushes in the middle of an apply; the result is the same."""
    monkeypatch.setattr(StoreWriter, "BATCH", 3)
    account = Account(tmp_path, small_account(3))
    converge(store, account)
    assert len(store.history()) == 12
    first = store.snapshot()
    first.load_items()  # now: its sub-items are read lazily, and the store moves on below

    # Archive + add of the same override key in one operation, in the same batch.
    for n in (1, 2, 3):
        account.spec(f"Contract/c{n}-2024")["overrides"][0]["multiplier"] = 0.5 + n / 10
    converge(store, account)
    for n in (1, 2, 3):
        contract_ = store.snapshot().objects[f"Contract/c{n}-2024"]
        states = [(i.key, i.archived) for i in contract_.items if i.list_name == "overrides"]
        assert states == [("cloud-discount", True), ("cloud-discount", False)]
        assert contract_.item_id("overrides", "cloud-discount") != \
            first.objects[f"Contract/c{n}-2024"].item_id("overrides", "cloud-discount")

    # Archive and re-create of one object (replace), and prune, in one apply.
    del account.spec("Contract/c2-2024")["scheduled_charges_on_usage_invoices"]
    account.remove("Contract/c3-2024", "Customer/c3")
    plan = make_plan(store, account, replace=("Contract/c2-2024",), prune=True)
    apply(store, plan)
    objects = store.snapshot(include_archived=True).objects
    assert not objects["Contract/c2-2024"].archived and objects["Contract/c3-2024"].archived
    assert objects["Contract/c2-2024"].remote_id != first.objects["Contract/c2-2024"].remote_id
    items = store.snapshot().objects["Contract/c2-2024"].items
    live = sorted((i.list_name, i.key) for i in items if not i.archived)
    assert live == [("commits", "prepaid"), ("overrides", "cloud-discount"), ("scheduled_charges", "platform-fee")]
    assert len([i for i in items if i.archived]) == 4  # the old object's items, and the earlier override
    assert not make_plan(store, account).operations


def test_history_records_every_operation_with_its_serial(store, account):
    plan = make_plan(store, account)
    result = apply(store, plan)
    assert result.serial == 1 and len(result.applied) == len(plan.operations)
    history = list(reversed(store.history()))
    assert [(r["op"], r["address"], r["action"]) for r in history] == \
           [(o.op, o.address, o.action.value) for o in plan.operations]
    assert {r["serial"] for r in history} == {1}
    ids = {r["address"]: r["response"]["data"]["id"] for r in history if r["op"].startswith("create_")}
    assert ids == {a: o.remote_id for a, o in store.snapshot().objects.items()}
