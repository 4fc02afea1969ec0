"""Contract transitions through plan and apply on the emulator (issue 13): the create body carries
`transition` exactly as the OpenAPI document defines it, the old contract ends at the new one's
start (shown in the plan, done by the backend), and the plan after apply is empty."""

from __future__ import annotations


from billing_reconciler.store.store import Store

from .support import Account, apply, contract, converge, make_plan, only, small_account

T = "2025-02-01T00:00:00Z"


def _successor(name: str, of: str, old: str, type_: str) -> dict:
    doc = contract(name, of, commits=(), overrides={}, charges=(), usage_filter=None)
    doc["spec"]["starting_at"] = T
    doc["spec"]["transition"] = {"from": old, "type": type_.lower(), "future_invoice_behavior": {"trueup": "as_is"}}
    return doc


def _emulator_contract(store: Store, remote_id: str) -> dict:
    from billing_reconciler.apply.backends.embedded import EmbeddedBackend

    with store.engine.connect() as conn:
        return EmbeddedBackend().emulator(conn).get("contract", remote_id)


def test_renewal_is_sent_with_the_old_contracts_id_and_ends_it_at_the_new_start(sqlite_store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(sqlite_store, account)
    account.add(_successor("c1-2025", "c1", "c1-2024", "RENEWAL"))
    plan = make_plan(sqlite_store, account)
    old_id = sqlite_store.snapshot().objects["Contract/c1-2024"].remote_id
    create = only(plan, "create_contract", "Contract/c1-2025")
    # Enums upper-cased as the document spells them; the key replaced by the id.
    assert create.request.body["transition"] == {"from_contract_id": old_id, "type": "RENEWAL",
                                                 "future_invoice_behavior": {"trueup": "AS_IS"}}
    end = only(plan, "edit_contract", "Contract/c1-2024")
    assert end.request.body == {"customer_id": end.request.body["customer_id"], "contract_id": old_id,
                                "update_contract_end_date": T}
    assert "RENEWAL transition of Contract/c1-2025" in end.reason
    apply(sqlite_store, plan)
    again = make_plan(sqlite_store, account)
    assert not again.operations and not again.drift and not again.errors
    old = _emulator_contract(sqlite_store, old_id)
    new_id = sqlite_store.snapshot().objects["Contract/c1-2025"].remote_id
    assert old["ending_before"] == T
    assert old["transitions"] == [{"type": "RENEWAL", "from_contract_id": old_id, "to_contract_id": new_id}]


def test_transition_from_a_contract_created_in_the_same_plan_names_it_by_placeholder(sqlite_store, tmp_path):
    account = Account(tmp_path, small_account(1))
    account.add(_successor("c1-2025", "c1", "c1-2024", "SUPERSEDE"))
    plan = make_plan(sqlite_store, account)
    create_old = only(plan, "create_contract", "Contract/c1-2024")
    assert create_old.request.body["ending_before"] == T  # ended where its successor starts
    create_new = only(plan, "create_contract", "Contract/c1-2025")
    assert create_new.request.body["transition"]["from_contract_id"] == "${Contract/c1-2024.id}"
    assert "Contract/c1-2024" in create_new.depends_on
    converge(sqlite_store, account)


def test_transition_cannot_change_after_create(sqlite_store, tmp_path):
    account = Account(tmp_path, small_account(2))
    account.add(_successor("c1-2025", "c1", "c1-2024", "RENEWAL"))
    converge(sqlite_store, account)
    account.spec("Contract/c1-2025")["transition"]["type"] = "SUPERSEDE"
    plan = make_plan(sqlite_store, account)
    assert plan.errored
    assert "transition cannot be changed after Contract/c1-2025 is created" in str(plan.errors[0])
