"""The planner against real stores: determinism, order, placeholders, digests before DeepDiff,
drift, unmanaged objects and prune, targets."""

from __future__ import annotations

import deepdiff
import pytest
from sqlalchemy import text

from billing_reconciler import canonical
from billing_reconciler.plan.operations import Action
from billing_reconciler.plan.planfile import plan_to_json
from billing_reconciler.plan.planner import KIND_ORDER, UnknownAddress
from billing_reconciler.plan.render import render

from .support import Account, apply, contract, converge, customer, make_plan, only, ops_of, small_account


def plan_json_text(plan) -> str:
    return canonical.dumps(plan_to_json(plan), indent=2, sort_keys=False)


# --- determinism --------------------------------------------------------------------------------

def test_same_input_gives_byte_identical_plans(store, account):
    first = make_plan(store, account)
    second = make_plan(store, account)
    assert plan_json_text(first) == plan_json_text(second)
    assert render(first, "json") == render(second, "json")
    assert render(first, "text") == render(second, "text")

    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    account.spec("Customer/c2")["name"] = "Renamed"
    account.remove("Contract/c2-2024")
    assert plan_json_text(make_plan(store, account, prune=True)) == plan_json_text(make_plan(store, account, prune=True))


def test_plan_does_not_depend_on_document_order_or_files(store, tmp_path):
    docs = small_account(3)
    forward = Account(tmp_path / "a", docs)
    backward = Account(tmp_path / "b", list(reversed(docs)))
    one = make_plan(store, forward)
    two = make_plan(store, backward)
    assert one.manifests_digest != two.manifests_digest  # the files differ...
    assert [o.to_json() for o in one.operations] == [o.to_json() for o in two.operations]  # ...the operations don't


# --- order and placeholders -----------------------------------------------------------------------

def test_operations_come_in_dependency_order_then_by_address(store, tmp_path):
    account = Account(tmp_path, small_account(3))
    plan = make_plan(store, account)
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    keys = [(rank[o.kind], o.address) for o in plan.operations]
    assert keys == sorted(keys)
    assert [o.kind for o in plan.operations][:1] == ["BillableMetric"]
    seen: set[str] = set()
    for op in plan.operations:
        assert set(op.depends_on) <= seen, f"{op.address} depends on {op.depends_on} planned later"
        seen.add(op.address)
    assert all(o.action == Action.CREATE for o in plan.operations)
    assert plan.summary() == {"create": 5 + 6, "update": 0, "replace": 0, "archive": 0}


def test_placeholders_name_objects_created_in_the_same_plan(store, account):
    plan = make_plan(store, account)
    create = only(plan, "create_contract", "Contract/c1-2024")
    body = create.request.body
    assert body["customer_id"] == "${Customer/c1.id}"
    assert body["rate_card_id"] == "${RateCard/cloud-2024.id}"
    assert body["commits"][0]["product_id"] == "${Product/prepaid-commit.id}"
    assert body["scheduled_charges"][0]["product_id"] == "${Product/platform-fee.id}"
    bpc = body["billing_provider_configuration"]["billing_provider_configuration_id"]
    assert bpc == "${Customer/c1.customer_billing_provider_configurations[aws].id}"
    assert create.depends_on == ("Customer/c1", "Product/platform-fee", "Product/prepaid-commit", "RateCard/cloud-2024")
    assert "key" not in body["commits"][0]  # item keys are ours, not the API's
    rates = only(plan, "add_rates")
    assert rates.request.body["rate_card_id"] == "${RateCard/cloud-2024.id}"
    assert rates.depends_on == ("Product/api-calls",)
    text_view = render(plan, "text")
    assert '"customer_id": "(known after apply)"' in text_view and "${" not in text_view


def test_objects_already_in_the_store_are_named_by_their_ids(store, account):
    converge(store, account)
    account.add(contract("c1-2025", "c1"))
    plan = make_plan(store, account)
    create = only(plan, "create_contract", "Contract/c1-2025")
    snapshot = store.snapshot()
    assert create.request.body["customer_id"] == snapshot.objects["Customer/c1"].remote_id
    assert create.request.body["rate_card_id"] == snapshot.objects["RateCard/cloud-2024"].remote_id
    bpc = create.request.body["billing_provider_configuration"]["billing_provider_configuration_id"]
    assert bpc == snapshot.objects["Customer/c1"].item_id("customer_billing_provider_configurations", "aws")
    assert create.depends_on == ()
    assert [o.address for o in plan.operations] == ["Contract/c1-2025"]


# --- digests first -----------------------------------------------------------------------------

@pytest.fixture
def deepdiff_calls(monkeypatch):
    calls = []
    real = deepdiff.DeepDiff

    def counting(before, after, **options):
        calls.append((before, after))
        return real(before, after, **options)

    monkeypatch.setattr(deepdiff, "DeepDiff", counting)
    return calls


def test_digest_equal_objects_are_never_deep_diffed(store, tmp_path, deepdiff_calls):
    account = Account(tmp_path, small_account(4))
    converge(store, account)
    deepdiff_calls.clear()
    plan = make_plan(store, account)
    assert not plan.operations and deepdiff_calls == []

    account.spec("Contract/c3-2024")["commits"][0]["name"] = "Renamed commit"
    plan = make_plan(store, account)
    assert [o.address for o in plan.operations] == ["Contract/c3-2024"]
    assert deepdiff_calls, "the changed object is diffed field by field"
    for _before, after in deepdiff_calls:
        assert "Renamed commit" in canonical.dumps(after)  # only the changed contract and its changed commit


def test_no_op_plan_parses_no_stored_body_and_reads_no_sub_items(store, tmp_path, monkeypatch):
    account = Account(tmp_path, small_account(3))
    converge(store, account)
    parsed = []
    real_loads = canonical.loads
    monkeypatch.setattr(canonical, "loads", lambda text_: parsed.append(text_) or real_loads(text_))
    snapshot = store.snapshot()
    result = account.load()
    from billing_reconciler.plan.planner import build_plan

    plan = build_plan(result.manifests, snapshot)
    assert not plan.operations
    assert parsed == []
    assert all(o._items is None for o in snapshot.objects.values())


# --- drift --------------------------------------------------------------------------------------

def tamper(store, kind: str, key: str, change) -> None:
    """Change an object's stored body behind the reconciler's back (out-of-band SQL)."""
    with store.engine.begin() as conn:
        body = conn.execute(text("SELECT body FROM objects WHERE kind = :k AND key = :key"),
                            {"k": kind, "key": key}).scalar_one()
        spec = canonical.loads(body)
        change(spec)
        conn.execute(text("UPDATE objects SET body = :b WHERE kind = :k AND key = :key"),
                     {"b": canonical.dumps(spec), "k": kind, "key": key})


def test_drift_is_reported_next_to_the_operation_and_restored(store, account):
    converge(store, account)
    tamper(store, "Customer", "c1", lambda spec: spec.update(name="Changed in the billing app"))
    assert store.snapshot().objects["Customer/c1"].drifted

    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Customer/c1"]
    assert [(c.path, c.before, c.after) for c in plan.drift[0].changes] == \
           [("name", "Changed in the billing app", "Customer c1")]
    op = only(plan, "set_customer_name", "Customer/c1")
    assert op.drift and op.reason.startswith("drifted")
    assert op.request.body["name"] == "Customer c1"
    assert plan_to_json(plan)["drift"][0]["address"] == "Customer/c1"
    text_view = render(plan, "text")
    assert "! Customer/c1 changed outside the manifests (drift)" in text_view
    assert "~ Customer/c1  (drifted)" in text_view
    assert "**Drift** `Customer/c1`" in render(plan, "markdown")

    apply(store, plan)
    restored = store.snapshot().objects["Customer/c1"]
    assert not restored.drifted and restored.spec["name"] == "Customer c1"
    converge(store, account)


def test_drift_in_a_contract_term_is_restored_by_the_contract_rules(store, account):
    converge(store, account)
    override_id = store.snapshot().objects["Contract/c2-2024"].item_id("overrides", "cloud-discount")
    tamper(store, "Contract", "c2-2024", lambda spec: spec["overrides"][0].update(multiplier=canonical.loads("0.5")))
    plan = make_plan(store, account)
    assert [d.address for d in plan.drift] == ["Contract/c2-2024"]
    assert [c.path for c in plan.drift[0].changes] == ["overrides[cloud-discount].multiplier"]
    edit = only(plan, "edit_contract", "Contract/c2-2024")
    assert edit.drift
    assert edit.request.body["remove_overrides"] == [{"id": override_id}]
    assert str(edit.request.body["add_overrides"][0]["multiplier"]) == "0.95"
    apply(store, plan)
    converge(store, account)


# --- unmanaged and prune ---------------------------------------------------------------------------

def test_objects_missing_from_the_manifests_are_unmanaged_unless_pruned(store, account):
    converge(store, account)
    account.remove("Customer/c2", "Contract/c2-2024")

    plan = make_plan(store, account)
    assert plan.operations == () and plan.unmanaged == ("Contract/c2-2024", "Customer/c2")
    assert "Unmanaged (in the store, not in the manifests; left alone, --prune archives them): " \
           "Contract/c2-2024, Customer/c2" in render(plan, "text")

    pruned = make_plan(store, account, prune=True)
    assert [(o.op, o.address, o.action) for o in pruned.operations] == [
        ("archive_contract", "Contract/c2-2024", Action.ARCHIVE),  # reverse dependency order
        ("archive_customer", "Customer/c2", Action.ARCHIVE)]
    assert pruned.unmanaged == ()
    customer_id = store.snapshot().objects["Customer/c2"].remote_id
    assert pruned.operations[1].request.body == {"id": customer_id}
    assert pruned.operations[0].request.body["customer_id"] == customer_id
    assert pruned.summary()["archive"] == 2

    apply(store, pruned)
    after = make_plan(store, account)
    assert after.operations == () and after.unmanaged == ()
    everything = store.snapshot(include_archived=True).objects
    assert everything["Customer/c2"].archived  # archived, never deleted

    # Managed again: created anew under the same key.
    account.add(customer("c2"), contract("c2-2024", "c2"))
    back = make_plan(store, account)
    assert [o.op for o in back.operations] == ["create_customer", "create_contract"]
    converge(store, account)
    assert store.snapshot().objects["Customer/c2"].remote_id != customer_id


# --- targets -------------------------------------------------------------------------------------

def test_target_limits_the_plan_to_the_object_and_what_it_needs(store, tmp_path):
    account = Account(tmp_path, small_account(2))
    plan = make_plan(store, account, targets=("Contract/c1-2024",))
    addresses = {o.address for o in plan.operations}
    assert addresses == {"Contract/c1-2024", "Customer/c1", "RateCard/cloud-2024", "Product/prepaid-commit",
                         "Product/platform-fee", "Product/api-calls", "BillableMetric/api-calls"}
    assert plan.targets == ("Contract/c1-2024",)
    apply(store, plan)
    assert set(store.snapshot().objects) == addresses

    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    account.spec("Contract/c2-2024")["overrides"][0]["multiplier"] = 0.8
    targeted = make_plan(store, account, targets=("Contract/c2-2024",))
    assert [o.address for o in targeted.operations] == ["Contract/c2-2024"]
    apply(store, targeted)
    rest = make_plan(store, account)
    assert [o.address for o in rest.operations] == ["Contract/c1-2024"]


def test_unknown_target_or_replace_is_refused_with_the_closest_address(store, account):
    # A typo must not plan nothing and pass a CI check: it is an error naming the closest address.
    with pytest.raises(UnknownAddress, match=r"--target Contract/c1-202: .*did you mean Contract/c1-2024\?"):
        make_plan(store, account, targets=("Contract/c1-202",))
    with pytest.raises(UnknownAddress, match=r"--replace Widget/x: no such object .*Kind/key"):
        make_plan(store, account, replace=("Widget/x",))


# --- summary and flags ---------------------------------------------------------------------------

def test_flags_tell_nothing_to_do_from_cannot_be_applied(store, account):
    converge(store, account)
    empty = make_plan(store, account)
    assert (empty.has_changes, empty.applyable, empty.errored) == (False, False, False)
    del account.spec("Contract/c1-2024")["scheduled_charges_on_usage_invoices"]
    refused = make_plan(store, account)
    assert (refused.applyable, refused.errored) == (False, True)
    data = plan_to_json(refused)
    assert data["applyable"] is False and data["errored"] is True and data["errors"]
    with pytest.raises(ValueError, match="has errors"):
        apply(store, refused)
    assert ops_of(refused) == []
