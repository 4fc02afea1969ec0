"""Lifecycle metadata through the CLI, on SQLite and PostgreSQL: renames (`moved_from`) plan no
API call and keep the object's id and history; ignored paths (`ignore_changes`) are sent on
create and then neither plan nor drift, in manifests or out of band; protection (`protect`) is
recorded in the store and refuses --prune and --replace even after its manifest is deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import run_cli
from .test_backend_truth import in_the_billing_app

CONTRACT = "Contract/widgetsexpress-2024"
CUSTOMER = "Customer/widgetsexpress"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


def _edit(tree: Path, *replacements: tuple[str, str]) -> None:
    path = tree / "manifests" / "customers" / "widgetsexpress.yaml"
    text = path.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)


def _cli(tree: Path, env: dict[str, str], *args: str, code: int = 0):
    result = run_cli(*args, cwd=tree, env=env)
    assert result.returncode == code, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _json(tree: Path, env: dict[str, str], *args: str, code: int = 0) -> dict:
    return json.loads(_cli(tree, env, *args, "--format", "json", code=code).stdout)


def _shown(tree: Path, env: dict[str, str], address: str) -> dict:
    return _json(tree, env, "show", address)["objects"][0]


def test_a_rename_with_a_field_change_is_one_update_and_no_create(example_tree: Path, store_url: str):
    tree, env = example_tree, {"BILLING_RECONCILER_STORE": store_url}
    _cli(tree, env, "init")
    _cli(tree, env, "apply", "--auto-approve")
    ids = {o["address"]: o["id"] for o in _json(tree, env, "show")["objects"]}
    contract_id, customer_id = ids[CONTRACT], ids[CUSTOMER]

    # The contract is renamed and its name changed; its customer is renamed too (the contract
    # names it by key); `never-existed` is a stale entry, ignored like Terraform's moved blocks.
    _edit(tree, ("  name: widgetsexpress-2024\n", "  name: we-2024\n  moved_from: [never-existed, widgetsexpress-2024]\n"),
          ("  name: WidgetsExpress 2024\n", "  name: WidgetsExpress 2024-25\n"),
          ("metadata:\n  name: widgetsexpress\n", "metadata:\n  name: wx\n  moved_from: [widgetsexpress]\n"),
          ("  customer: widgetsexpress\n", "  customer: wx\n"))
    _cli(tree, {}, "validate")  # needs no store: run without one
    markdown = _cli(tree, env, "plan", "--format", "markdown").stdout
    assert "| `~` | `Contract/widgetsexpress-2024` → `Contract/we-2024` (moved) |" in markdown, markdown
    text = _cli(tree, env, "plan", "--out", str(tree / "rename.json")).stdout
    assert "Contract/widgetsexpress-2024 -> Contract/we-2024 (moved)" in text, text
    assert "Customer/widgetsexpress -> Customer/wx (moved)" in text
    plan = json.loads((tree / "rename.json").read_text())  # the plan file carries the moves
    assert plan["moved"] == [{"from": "Customer/widgetsexpress", "to": "Customer/wx"},
                             {"from": CONTRACT, "to": "Contract/we-2024"}]
    [op] = plan["operations"]  # one update, no create, nothing for the customer or the reference
    assert (op["op"], op["address"], op["action"]) == ("edit_contract", "Contract/we-2024", "update")
    assert op["request"]["body"] == {"customer_id": customer_id, "contract_id": contract_id,
                                     "update_contract_name": "WidgetsExpress 2024-25"}
    assert plan["summary"] == {"create": 0, "update": 1, "replace": 0, "archive": 0}

    _cli(tree, env, "apply", str(tree / "rename.json"))
    _cli(tree, env, "plan", "--detailed-exitcode")  # converged: no drift from the renamed reference
    shown = _shown(tree, env, "Contract/we-2024")
    assert (shown["id"], shown["api"]["name"], shown["drifted"]) == (contract_id, "WidgetsExpress 2024-25", False)
    assert (shown["spec"]["customer"], shown["moved_from"]) == ("wx", ["widgetsexpress-2024"])
    history = _json(tree, env, "history", "Contract/we-2024")["edits"]
    assert [(e["op"], e["address"]) for e in history] == [
        ("edit_contract", "Contract/we-2024"), ("move", "Contract/we-2024"), ("create_contract", CONTRACT)]
    assert history[1]["request"]["body"] == {"from": CONTRACT, "to": "Contract/we-2024"}
    assert _cli(tree, env, "show", CONTRACT, code=1)  # the old key is gone


def test_ignored_paths_are_sent_on_create_then_neither_planned_nor_drift(example_tree: Path, store_url: str):
    tree, env = example_tree, {"BILLING_RECONCILER_STORE": store_url}
    _edit(tree, ("metadata:\n  name: widgetsexpress\n",
                 "metadata:\n  name: widgetsexpress\n  ignore_changes: [spec.name, spec.custom_fields.sfdc_account_id]\n"),
          ("  name: widgetsexpress-2024\n", "  name: widgetsexpress-2024\n  ignore_changes:\n"
                                            "    - spec.commits[prepaid-2024].name\n    - spec.scheduled_charges[*].name\n"))
    _cli(tree, env, "init")
    _cli(tree, env, "apply", "--auto-approve")
    shown = {o["address"]: o for o in _json(tree, env, "show")["objects"]}
    customer, contract_id = shown[CUSTOMER], shown[CONTRACT]["id"]
    assert customer["api"]["name"] == "WidgetsExpress"  # sent on create
    assert customer["api"]["custom_fields"] == {"sfdc_account_id": "sfdc1001"}

    # Another system (the CRM sync) changes the ignored fields in the billing app.
    in_the_billing_app(store_url, "POST", f"/v1/customers/{customer['id']}/setName", {"name": "Widgets (CRM)"})
    in_the_billing_app(store_url, "POST", "/v1/customFields/setValues", {
        "entity": "customer", "entity_id": customer["id"], "custom_fields": {"sfdc_account_id": "sfdc-crm"}})
    plan = _json(tree, env, "plan")
    assert (plan["operations"], plan["drift"]) == ([], [])
    assert _shown(tree, env, CUSTOMER)["drifted"] is False

    # In the manifests: the ignored fields change (nothing planned) and one that is not (planned).
    _edit(tree, ("  name: WidgetsExpress\n", "  name: WidgetsExpress Inc\n"),
          ("    sfdc_account_id: sfdc1001\n", "    sfdc_account_id: sfdc2002\n"),
          ("    - widgets-express-prod\n", "    - widgets-express-prod\n    - wx-prod\n"),
          ("      name: Contract Prepaid Commit\n", "      name: Prepaid (renamed)\n"),
          ("      name: Platform Charge\n", "      name: Platform (renamed)\n"),
          ("  name: WidgetsExpress 2024\n", "  name: WidgetsExpress 2024-25\n"))
    plan = _json(tree, env, "plan")
    assert plan["drift"] == []
    assert [(o["op"], o["request"]["body"]) for o in plan["operations"]] == [
        ("set_ingest_aliases", {"ingest_aliases": ["team@widgetsexpress.com", "widgets-express-prod", "wx-prod"]}),
        ("edit_contract", {"customer_id": customer["id"], "contract_id": contract_id,
                           "update_contract_name": "WidgetsExpress 2024-25"})]
    _cli(tree, env, "apply", "--auto-approve")
    _cli(tree, env, "plan", "--detailed-exitcode")
    assert _shown(tree, env, CUSTOMER)["api"]["name"] == "Widgets (CRM)"  # still the CRM's


def test_protection_is_recorded_and_outlives_its_manifest(example_tree: Path, store_url: str):
    tree, env = example_tree, {"BILLING_RECONCILER_STORE": store_url}
    _edit(tree, ("  name: widgetsexpress-2024\n", "  name: widgetsexpress-2024\n  protect: true\n"))
    _cli(tree, env, "init")
    _cli(tree, env, "apply", "--auto-approve")

    _edit(tree, ("  name: WidgetsExpress 2024\n", "  name: WidgetsExpress 2024-25\n"))
    refused = _cli(tree, env, "plan", "--replace", CONTRACT, code=1)
    assert f"{CONTRACT}: metadata.protect: protected" in refused.stdout, refused.stdout
    assert "first apply its manifest with protect: false" in refused.stdout

    # The manifest that said protect is deleted: the store still remembers.
    path = tree / "manifests" / "customers" / "widgetsexpress.yaml"
    documents = path.read_text().split("\n---\n")
    path.write_text("\n---\n".join(d for d in documents if "kind: Contract" not in d))
    assert _json(tree, env, "plan")["unmanaged"] == [CONTRACT]
    refused = _json(tree, env, "plan", "--prune", code=1)
    assert [(e["address"], "protect: false" in e["message"]) for e in refused["errors"]] == [(CONTRACT, True)]
    assert refused["operations"] == [] and refused["applyable"] is False
    _cli(tree, env, "apply", "--prune", "--auto-approve", code=1)
    shown = _shown(tree, env, CONTRACT)
    assert (shown["protected"], shown["api"].get("archived_at")) == (True, None)

    # The way out: apply protect: false, then prune.
    path.write_text("\n---\n".join(documents).replace("  protect: true\n", "  protect: false\n"))
    plan = _json(tree, env, "plan")
    assert plan["recorded"] == [{"address": CONTRACT, "protect": False}]
    _cli(tree, env, "apply", "--auto-approve")
    path.write_text("\n---\n".join(d for d in documents if "kind: Contract" not in d))
    pruned = _json(tree, env, "plan", "--prune")
    assert [(o["op"], o["address"]) for o in pruned["operations"]] == [("archive_contract", CONTRACT)]
