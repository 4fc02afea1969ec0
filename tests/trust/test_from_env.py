"""`{from_env: NAME}`: secrets kept out of git, read by plan and apply, never printed.

Mutations caught:
- service.plan_loaded without from_env.resolve: plan sends {"from_env": ...} (the emulator refuses
  it) instead of naming the unset variable (test_an_unset_variable...);
- from_env.resolve accepting an empty value ("is set but empty");
- from_env.sensitive_paths not added to Manifest.sensitive: sfdc_account_id is not named like a
  credential and leaks in plan output (test_the_value_is_never_printed...);
- plan --from-ref resolving references (it would need the variable and compare values):
  test_from_ref_compares_references_not_values;
- from_env.stand_ins / the EnvText schema: test_validate_needs_no_variable..., test_the_schema...
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fastjsonschema

from tests.conftest import ROOT, run_cli

ENVY = """apiVersion: billing-reconciler/v1
kind: Customer
metadata:
  name: envy
spec:
  name: Envy Inc
  custom_fields:
    sfdc_account_id: {from_env: ENVY_SFDC}
  customer_billing_provider_configurations:
    - key: stripe
      billing_provider: stripe
      configuration:
        stripe_customer_id: {from_env: ENVY_STRIPE_CUSTOMER}
        stripe_collection_method: charge_automatically
      delivery_method: direct_to_billing_provider
"""
VALUES = {"ENVY_SFDC": "sfdc-0015e-7777", "ENVY_STRIPE_CUSTOMER": "cus_env_4242"}


def _tree(example_tree: Path, text: str = ENVY) -> Path:
    (example_tree / "manifests" / "customers" / "envy.yaml").write_text(text)
    return example_tree


def test_validate_needs_no_variable_and_lists_them(example_tree: Path):
    tree = _tree(example_tree)
    result = run_cli("validate", cwd=tree, env={"ENVY_SFDC": ""})
    assert result.returncode == 0, result.stderr
    assert ("Read from the environment by plan and apply (validate does not need them set): "
            "ENVY_SFDC, ENVY_STRIPE_CUSTOMER.") in result.stdout
    doc = json.loads(run_cli("validate", "--format", "json", cwd=tree).stdout)
    assert doc["valid"] and doc["from_env"] == ["ENVY_SFDC", "ENVY_STRIPE_CUSTOMER"]


def test_an_unset_variable_is_an_error_naming_it_the_file_and_line(example_tree: Path):
    tree = _tree(example_tree)
    run_cli("init", cwd=tree, check=True)
    result = run_cli("plan", "--out", "plan.json", cwd=tree, env={"ENVY_SFDC": ""})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # Line 8 is `sfdc_account_id: ...`, line 13 `stripe_customer_id: ...` (counted in ENVY above).
    assert ("manifests/customers/envy.yaml:8:5: Customer/envy: spec.custom_fields.sfdc_account_id: "
            "environment variable ENVY_SFDC is set but empty") in result.stderr
    assert ("manifests/customers/envy.yaml:13:9: Customer/envy: spec.customer_billing_provider_configurations[0]"
            ".configuration.stripe_customer_id: environment variable ENVY_STRIPE_CUSTOMER is not set") in result.stderr
    assert not (tree / "plan.json").exists()
    applied = run_cli("apply", "--auto-approve", cwd=tree, env={"ENVY_SFDC": "x"})
    assert applied.returncode == 1 and "ENVY_STRIPE_CUSTOMER is not set" in applied.stderr


def test_the_value_is_never_printed_and_a_new_value_is_a_change(example_tree: Path):
    tree = _tree(example_tree)
    run_cli("init", cwd=tree, check=True)
    outputs = [run_cli("plan", "--format", fmt, cwd=tree, env=VALUES) for fmt in ("text", "json", "markdown")]
    outputs.append(run_cli("apply", "--auto-approve", cwd=tree, env=VALUES, check=True))
    outputs += [run_cli(*args, cwd=tree) for args in (["show", "Customer/envy", "--format", "json"],
                                                      ["history", "--format", "json"])]
    for result in outputs:
        assert not [v for v in VALUES.values() if v in result.stdout + result.stderr], result.args
    assert '"sfdc_account_id": "(sensitive)"' in outputs[0].stdout
    assert run_cli("plan", "--detailed-exitcode", cwd=tree, env=VALUES).returncode == 0  # applied: converged
    rotated = run_cli("plan", "--detailed-exitcode", cwd=tree, env={**VALUES, "ENVY_SFDC": "sfdc-0015e-8888"})
    assert rotated.returncode == 2
    assert '~ custom_fields.sfdc_account_id: "(sensitive)" -> "(sensitive)"' in rotated.stdout
    assert "8888" not in rotated.stdout and "7777" not in rotated.stdout


def test_from_ref_compares_references_not_values(example_tree: Path):
    tree = _tree(example_tree)
    git = lambda *args: subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    # No variable set, and none needed: the same references on both sides are no change.
    same = run_cli("plan", "--from-ref", "HEAD", "--detailed-exitcode", cwd=tree)
    assert same.returncode == 0, same.stdout + same.stderr
    path = tree / "manifests" / "customers" / "envy.yaml"
    path.write_text(path.read_text().replace("ENVY_SFDC", "ENVY_SFDC_V2"))
    moved = run_cli("plan", "--from-ref", "HEAD", "--detailed-exitcode", cwd=tree, env=VALUES)
    assert moved.returncode == 2, moved.stdout + moved.stderr
    assert '~ custom_fields.sfdc_account_id: "(sensitive)" -> "(sensitive)"' in moved.stdout
    assert "7777" not in moved.stdout


def test_the_schema_allows_from_env_where_text_is_expected():
    schema = json.loads((ROOT / "schemas" / "Customer.schema.json").read_text())
    check = fastjsonschema.compile(schema)
    doc = {"apiVersion": "billing-reconciler/v1", "kind": "Customer", "metadata": {"name": "envy"},
           "spec": {"name": "Envy", "custom_fields": {"a": "text", "b": {"from_env": "B_VALUE"}}}}
    check(doc)
    for wrong in ({"from_env": "1starts-with-digit"}, {"from_env": "B", "default": "x"}, {"from_envy": "B"}):
        doc["spec"]["custom_fields"]["b"] = wrong
        try:
            check(doc)
        except fastjsonschema.JsonSchemaException:
            continue
        raise AssertionError(f"the schema accepted {wrong}")


def test_a_malformed_reference_is_located(example_tree: Path):
    tree = _tree(example_tree, ENVY.replace("{from_env: ENVY_STRIPE_CUSTOMER}", "{from_env: ENVY, default: x}"))
    result = run_cli("validate", cwd=tree)
    assert result.returncode == 1
    assert ("envy.yaml:13:9: Customer/envy: spec.customer_billing_provider_configurations[0].configuration."
            "stripe_customer_id: a {from_env: NAME} value has no other fields (found default)") in result.stderr
