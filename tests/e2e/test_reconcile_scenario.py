"""The reconcile scenario of issue 4, through the CLI as a subprocess, on SQLite and PostgreSQL.

Each step edits a manifest, checks the exact operation and request body the plan shows,
applies it, and checks that the next plan is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ..conftest import run_cli

CONTRACT_FILE = Path("manifests/customers/widgetsexpress.yaml")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"BILLING_RECONCILER_STORE": f"sqlite:///{tmp_path}/store/state.db"}
    return {"BILLING_RECONCILER_STORE": request.getfixturevalue("postgres_url")}


class Tree:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env
        self.yaml = YAML(typ="rt")

    def cli(self, *args: str, expect: int | None = 0):
        result = run_cli(*args, cwd=self.root, env=self.env)
        if expect is not None:
            assert result.returncode == expect, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def plan_json(self, expect: int = 2) -> dict:
        result = self.cli("plan", "--format", "json", "--detailed-exitcode", expect=expect)
        return json.loads(result.stdout)

    def edit(self, path: Path, change) -> None:
        full = self.root / path
        docs = list(self.yaml.load_all(full.read_text()))
        change(docs)
        with full.open("w") as fh:
            self.yaml.dump_all(docs, fh)

    def contract(self, docs):
        return next(d for d in docs if d["kind"] == "Contract")["spec"]

    def customer(self, docs):
        return next(d for d in docs if d["kind"] == "Customer")["spec"]

    def apply_and_converge(self) -> None:
        self.cli("apply", "--auto-approve")
        result = self.cli("plan", "--detailed-exitcode", expect=0)
        assert "No changes" in result.stdout

    def store_objects(self) -> dict:
        shown = json.loads(self.cli("show", "--format", "json").stdout)
        return {o["address"]: o for o in shown["objects"]}


def only_op(plan: dict, op: str) -> dict:
    ops = [o for o in plan["operations"] if o["op"] == op]
    assert len(ops) == 1, [o["op"] for o in plan["operations"]]
    return ops[0]


def test_reconcile_scenario(example_tree: Path, store_env: dict[str, str]):
    tree = Tree(example_tree, store_env)
    tree.cli("init")

    # Creates, exit 2; apply; then no changes.
    plan = tree.plan_json()
    assert plan["summary"]["create"] == 22 and plan["applyable"] is True
    text = tree.cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "+ Contract/widgetsexpress-2024" in text and "create_contract" in text
    assert "Plan: 22 to create, 0 to update, 0 to replace, 0 to archive." in text
    tree.apply_and_converge()
    ids = tree.store_objects()
    contract_id = ids["Contract/widgetsexpress-2024"]["id"]
    customer_id = ids["Customer/widgetsexpress"]["id"]

    # 1. A 0.95 multiplier on cloud from 2024-11-01: edit_contract with add_overrides.
    override = {"key": "cloud-discount", "starting_at": "2024-11-01T00:00:00Z", "entitled": True,
                "type": "MULTIPLIER", "multiplier": 0.95, "applicable_product_tags": ["cloud"]}
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).insert(len(tree.contract(docs)), "overrides", [override]))
    edit = only_op(tree.plan_json(), "edit_contract")
    assert (edit["request"]["method"], edit["request"]["path"]) == ("POST", "/v2/contracts/edit")
    assert edit["request"]["body"]["add_overrides"] == [{
        "applicable_product_tags": ["cloud"], "entitled": True, "multiplier": 0.95,
        "starting_at": "2024-11-01T00:00:00Z", "type": "MULTIPLIER"}]
    assert set(edit["request"]["body"]) == {"customer_id", "contract_id", "add_overrides"}
    assert edit["request"]["body"]["contract_id"] == contract_id
    tree.apply_and_converge()

    # 2. Usage filter to [US, EU] from 2025-01-01: set_usage_filter with its starting_at.
    def widen_filter(docs):
        tree.contract(docs)["usage_filter"]["group_values"] = ["US", "EU"]
        tree.contract(docs)["usage_filter"]["starting_at"] = "2025-01-01T00:00:00Z"
    tree.edit(CONTRACT_FILE, widen_filter)
    op = only_op(tree.plan_json(), "set_usage_filter")
    assert op["request"] == {"method": "POST", "path": "/v1/contracts/setUsageFilter", "body": {
        "customer_id": customer_id, "contract_id": contract_id, "group_key": "region",
        "group_values": ["US", "EU"], "starting_at": "2025-01-01T00:00:00Z"}}
    tree.apply_and_converge()

    # 3. A second (Stripe) configuration, then removed: archived, not deleted. The aws_marketplace
    #    one cannot go: the contract bills through it (a located error naming the contract).
    stripe = {"key": "stripe", "billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
              "configuration": {"stripe_customer_id": "cus_123", "stripe_collection_method": "charge_automatically"}}
    tree.edit(CONTRACT_FILE, lambda docs: tree.customer(docs)["customer_billing_provider_configurations"].append(stripe))
    tree.apply_and_converge()
    stripe_id = next(i["id"] for i in tree.store_objects()["Customer/widgetsexpress"]["items"]
                     if i["key"] == "stripe" and not i["archived"])
    removed = {}

    def drop_aws(docs):
        removed["aws"] = tree.customer(docs)["customer_billing_provider_configurations"].pop(0)
    tree.edit(CONTRACT_FILE, drop_aws)
    refused = tree.cli("plan", expect=1)
    assert "Contract/widgetsexpress-2024" in refused.stderr and "aws_marketplace" in refused.stderr
    tree.edit(CONTRACT_FILE, lambda docs: tree.customer(docs).__setitem__(
        "customer_billing_provider_configurations", [removed["aws"]]))
    op = only_op(tree.plan_json(), "archive_customer_billing_provider_configurations")
    assert op["request"]["path"] == "/v1/archiveCustomerBillingProviderConfigurations"
    assert op["request"]["body"] == {"customer_id": customer_id,
                                     "customer_billing_provider_configuration_ids": [stripe_id]}
    tree.apply_and_converge()
    items = tree.store_objects()["Customer/widgetsexpress"]["items"]
    assert [i["archived"] for i in items if i["key"] == "stripe"] == [True]

    # 4. The override to 0.90: removed and added again in one edit_contract; the plan lists only the
    #    multiplier (0.95 -> 0.9), as forcing the replacement.
    override_id = next(i["id"] for i in tree.store_objects()["Contract/widgetsexpress-2024"]["items"]
                       if i["list"] == "overrides" and not i["archived"])
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs)["overrides"][0].__setitem__("multiplier", 0.90))
    edit = only_op(tree.plan_json(), "edit_contract")
    body = edit["request"]["body"]
    assert body["remove_overrides"] == [{"id": override_id}]
    assert body["add_overrides"][0]["multiplier"] == 0.9
    text = tree.cli("plan", expect=0).stdout
    assert "~ overrides[cloud-discount].multiplier: 0.95 -> 0.9  # forces replacement" in text
    assert "Plan: 0 to create, 1 to update" in text
    tree.apply_and_converge()

    # 5. Add a credit, then remove it: add_credits, then archive_credits.
    credit = {"key": "sla-credit", "product": "prepaid-commit", "name": "SLA credit",
              "access_schedule": {"schedule_items": [{"amount": 50000, "starting_at": "2024-12-01T00:00:00Z",
                                                      "ending_before": "2025-12-01T00:00:00Z"}]}}
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).__setitem__("credits", [credit]))
    edit = only_op(tree.plan_json(), "edit_contract")
    assert edit["request"]["body"]["add_credits"][0]["access_schedule"]["schedule_items"][0]["amount"] == 50000
    assert "product_id" in edit["request"]["body"]["add_credits"][0]
    tree.apply_and_converge()
    credit_id = next(i["id"] for i in tree.store_objects()["Contract/widgetsexpress-2024"]["items"]
                     if i["list"] == "credits")
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).pop("credits"))
    edit = only_op(tree.plan_json(), "edit_contract")
    assert edit["request"]["body"]["archive_credits"] == [{"id": credit_id}]
    tree.apply_and_converge()

    # 6. scheduled_charges_on_usage_invoices cannot change: refused, located, with the way out.
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).pop("scheduled_charges_on_usage_invoices"))
    result = tree.cli("plan", "--detailed-exitcode", expect=1)
    assert "manifests/customers/widgetsexpress.yaml:" in result.stdout
    assert "Contract/widgetsexpress-2024: spec.scheduled_charges_on_usage_invoices" in result.stdout
    assert "cannot be changed after" in result.stdout and "new Contract with a new key" in result.stdout
    assert json.loads(tree.cli("plan", "--format", "json", expect=1).stdout)["errored"] is True
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).insert(8, "scheduled_charges_on_usage_invoices", "ALL"))
    tree.cli("plan", "--detailed-exitcode", expect=0)

    # A plan saved before another apply is refused as stale.
    tree.edit(CONTRACT_FILE, lambda docs: tree.contract(docs).__setitem__("name", "WidgetsExpress 2024-25"))
    tree.cli("plan", "--out", "saved.json", expect=0)
    tree.cli("apply", "--auto-approve")
    stale = tree.cli("apply", "saved.json", expect=1)
    assert "stale" in stale.stderr and "run plan again" in stale.stderr

    # history lists every operation, newest first.
    history = json.loads(tree.cli("history", "--format", "json").stdout)["edits"]
    ops = [e["op"] for e in history]
    assert ops[0] == "edit_contract"
    for expected in ("create_contract", "set_usage_filter", "archive_customer_billing_provider_configurations",
                     "create_customer", "add_rates"):
        assert expected in ops
    assert len(history) == 24 + 7 + 1  # step 3 adds a configuration, then archives it
    assert [e["serial"] for e in history] == sorted((e["serial"] for e in history), reverse=True)


def test_apply_refuses_without_terminal_or_approval(example_tree: Path, store_env: dict[str, str]):
    tree = Tree(example_tree, store_env)
    tree.cli("init")
    result = tree.cli("apply", expect=1)
    assert "--auto-approve" in result.stderr
    assert tree.cli("plan", "--detailed-exitcode", expect=2)


def test_no_plan_is_saved_against_an_uninitialised_store(example_tree: Path, store_env: dict[str, str]):
    # Such a plan could never apply (init changes the lineage): plan refuses before making it.
    tree = Tree(example_tree, store_env)
    result = tree.cli("plan", "--out", "early.json", expect=1)
    assert "run `billing-reconciler init`" in result.stderr
    assert not (example_tree / "early.json").exists()


def test_saved_plan_applies_and_is_refused_when_manifests_changed(example_tree: Path, store_env: dict[str, str]):
    tree = Tree(example_tree, store_env)
    tree.cli("init")
    tree.cli("plan", "--out", "plan.json")
    (example_tree / "manifests" / "extra.yaml").write_text(
        "apiVersion: billing-reconciler/v1\nkind: Product\nmetadata: {name: extra}\nspec: {name: Extra, type: FIXED}\n")
    refused = tree.cli("apply", "plan.json", expect=1)
    assert "changed since this plan was made" in refused.stderr
    (example_tree / "manifests" / "extra.yaml").unlink()
    applied = tree.cli("apply", "plan.json")
    assert "Apply complete: 24 operation(s)" in applied.stdout


def test_import_adopts_unmanaged_objects_round_trip(example_tree: Path, store_env: dict[str, str]):
    tree = Tree(example_tree, store_env)
    tree.cli("init")
    tree.cli("apply", "--auto-approve")
    (example_tree / "manifests" / "customers" / "seat-plans.yaml").unlink()
    plan = tree.plan_json(expect=0)
    assert "Contract/acme-pro-2025" in plan["unmanaged"]
    result = tree.cli("import")
    assert "Imported 6 object(s)" in result.stdout
    assert (example_tree / "manifests" / "imported" / "contracts" / "acme-pro-2025.yaml").exists()
    tree.cli("validate")
    final = tree.plan_json(expect=0)
    assert final["operations"] == [] and final["unmanaged"] == []
