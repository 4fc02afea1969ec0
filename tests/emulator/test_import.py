"""`import` adopts what the backend holds and the store does not map: objects made straight
through the API (no manifest ever seen) get keys from their names, unique within their kind, and
keyed items get keys too; the written manifests then plan nothing."""

from __future__ import annotations

from billing_reconciler.adopt import adopt, unmanaged_objects
from billing_reconciler.apply.backends.embedded import EmbeddedBackend
from billing_reconciler.manifests.export import write_manifests
from billing_reconciler.manifests import load_manifests
from billing_reconciler.service import plan_from_tree

from ..plan.support import Account, converge, small_account
from ..plan.support import store, store_url  # noqa: F401 - fixtures
from .test_drift import out_of_band


def test_objects_made_in_the_billing_app_are_adopted_and_plan_nothing(store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(store, account)
    snapshot = store.snapshot()
    product = snapshot.objects["Product/api-calls"].remote_id
    rate_card = snapshot.objects["RateCard/cloud-2024"].remote_id
    # Two customers with the same name (keys must differ) and a contract, made in the app.
    [first, second] = [r["data"]["id"] for r in out_of_band(
        store,
        ("POST", "/v1/customers", {"name": "Acme Corp", "ingest_aliases": ["acme-prod"]}),
        ("POST", "/v1/customers", {"name": "Acme Corp"}))]
    out_of_band(store, ("POST", "/v1/contracts/create", {
        "customer_id": first, "rate_card_id": rate_card, "starting_at": "2025-01-01T00:00:00Z",
        "name": "Acme 2025",
        "commits": [{"type": "PREPAID", "product_id": product, "name": "Prepaid",
                     "access_schedule": {"schedule_items": [{"amount": 50000, "starting_at": "2025-01-01T00:00:00Z",
                                                             "ending_before": "2026-01-01T00:00:00Z"}]}},
                    {"type": "PREPAID", "product_id": product, "name": "Prepaid",
                     "access_schedule": {"schedule_items": [{"amount": 100, "starting_at": "2025-01-01T00:00:00Z",
                                                             "ending_before": "2026-01-01T00:00:00Z"}]}}]}))

    found = unmanaged_objects(store, EmbeddedBackend())
    by_address = {a.address: a for a in found}
    assert [a.address for a in found] == ["Customer/acme-corp", "Customer/acme-corp-2", "Contract/acme-2025"]
    assert {by_address["Customer/acme-corp"].remote_id, by_address["Customer/acme-corp-2"].remote_id} == {first, second}
    first_key = "acme-corp" if by_address["Customer/acme-corp"].remote_id == first else "acme-corp-2"
    contract = by_address["Contract/acme-2025"].spec
    assert contract["customer"] == first_key and contract["rate_card"] == "cloud-2024"
    assert [c["key"] for c in contract["commits"]] == ["prepaid", "prepaid-2"]
    assert {c["product"] for c in contract["commits"]} == {"api-calls"}

    adopt(store, found)
    write_manifests([(a.kind, a.key, a.spec) for a in found], account.manifests_dir / "imported")
    loaded = load_manifests(account.manifests_dir)
    assert loaded.ok, [str(p) for p in loaded.problems]
    plan = plan_from_tree(store, account.manifests_dir)
    assert not plan.operations and not plan.drift and not plan.unmanaged
    assert unmanaged_objects(store, EmbeddedBackend()) == []
