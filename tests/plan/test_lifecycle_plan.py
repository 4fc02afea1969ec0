"""Lifecycle metadata in the planner and the store (library level, real stores): refused
renames, stale former keys, ignored paths added and removed later, protection recorded."""

from __future__ import annotations

from billing_reconciler.store.store import Store

from .support import Account, apply, converge, make_plan, only, small_account
from .support import store, store_url  # noqa: F401 - fixtures
from ..emulator.test_drift import out_of_band


def _meta(account: Account, address: str) -> dict:
    return account.docs[account._index(address)]["metadata"]


def _renamed(account: Account, address: str, new: str, *former: str) -> None:
    meta = _meta(account, address)
    meta["name"] = new
    meta["moved_from"] = list(former)


def test_renames_the_store_cannot_make_are_refused_at_the_former_key(store: Store, tmp_path):
    account = Account(tmp_path, small_account(2))
    converge(store, account)
    # c1-2024 -> c1-2025 while c1-2024 still has a manifest: two objects cannot be one.
    account.add({**account.docs[account._index("Contract/c1-2024")], "metadata": {
        "name": "c1-2025", "moved_from": ["c1-2024"]}})
    plan = make_plan(store, account)
    [problem] = plan.errors
    assert (problem.address, problem.path) == ("Contract/c1-2025", "metadata.moved_from[0]")
    assert "Contract/c1-2024 is still in the manifests" in problem.message
    # Both c1-2024 and c2-2024 are moved to keys whose manifests claim the same former key.
    account.remove("Contract/c1-2025")
    _renamed(account, "Contract/c1-2024", "x", "c2-2024")
    _renamed(account, "Contract/c2-2024", "y", "c2-2024")
    messages = [(p.address, p.message) for p in make_plan(store, account).errors]
    assert ("Contract/y", "Contract/c2-2024 is also named in moved_from of Contract/x; an object moves to one key") \
        in messages


def test_a_former_key_the_store_does_not_know_is_ignored(store: Store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    contract_id = store.snapshot().objects["Contract/c1-2024"].remote_id
    _renamed(account, "Contract/c1-2024", "c1-main", "c1-2024", "c1-2023")
    plan = make_plan(store, account)
    assert [m.to_json() for m in plan.moves] == [{"from": "Contract/c1-2024", "to": "Contract/c1-main"}]
    assert plan.operations == () and plan.records == ()
    converge(store, account)  # applied; then the entries are stale and plan nothing
    moved = store.snapshot().objects["Contract/c1-main"]
    assert (moved.remote_id, moved.moved_from) == (contract_id, ("c1-2024",))
    assert "Contract/c1-2024" not in store.snapshot().objects


def test_ignored_paths_added_later_are_recorded_and_removed_later_plan_again(store: Store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    _meta(account, "Customer/c1")["ignore_changes"] = ["spec.name"]
    plan = make_plan(store, account)
    [record] = plan.records
    assert (record.address, record.ignore_changes, plan.operations) == ("Customer/c1", ("spec.name",), ())
    assert record.digest is not None  # the applied digest is now taken without spec.name
    converge(store, account)
    customer_id = store.snapshot().objects["Customer/c1"].remote_id
    out_of_band(store, ("POST", f"/v1/customers/{customer_id}/setName", {"name": "From the CRM"}))
    plan = make_plan(store, account)
    assert (plan.operations, plan.drift) == ((), ())

    del _meta(account, "Customer/c1")["ignore_changes"]  # the manifest owns the name again
    plan = make_plan(store, account)
    assert [(r.address, r.ignore_changes) for r in plan.records] == [("Customer/c1", ())]
    assert only(plan, "set_customer_name").request.body == {"name": "Customer c1"}
    apply(store, plan)
    assert store.snapshot().objects["Customer/c1"].ignore_changes == ()
    converge(store, account)


def test_protect_is_recorded_on_create_and_blocks_a_prune_of_the_object(store: Store, tmp_path):
    account = Account(tmp_path, small_account(1))
    _meta(account, "Customer/c1")["protect"] = True
    converge(store, account)
    assert store.snapshot().objects["Customer/c1"].protected is True
    account.remove("Contract/c1-2024", "Customer/c1")
    plan = make_plan(store, account, prune=True)
    [problem] = plan.errors
    assert problem.address == "Customer/c1" and "apply its manifest with protect: false" in problem.message
    # The contract (not protected) would be archived, the customer not; the refusal blocks the plan.
    assert [(o.op, o.address) for o in plan.operations] == [("archive_contract", "Contract/c1-2024")]
    assert not plan.applyable


def test_a_renamed_customer_re_keys_its_contracts_reference_with_no_api_call(store: Store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    _renamed(account, "Customer/c1", "c1-inc", "c1")
    account.spec("Contract/c1-2024")["customer"] = "c1-inc"
    plan = make_plan(store, account)
    # The contract's customer cannot change (create-only): it is the same customer, so nothing is
    # planned for it; its applied digest is recorded anew, as the manifest now names the new key.
    assert (plan.errors, plan.operations) == ((), ())
    assert [m.to_json() for m in plan.moves] == [{"from": "Customer/c1", "to": "Customer/c1-inc"}]
    assert [(r.address, r.protect, r.ignore_changes, r.digest is not None) for r in plan.records] == [
        ("Contract/c1-2024", None, None, True)]
    apply(store, plan)
    converge(store, account)  # no refusal, no drift: the contract's body is read again with the new key
    assert store.snapshot().objects["Contract/c1-2024"].spec["customer"] == "c1-inc"
