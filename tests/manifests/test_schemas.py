from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML

from billing_reconciler.manifests.schema import COMBINED, stale_schemas

from ..conftest import EXAMPLE_MANIFESTS, ROOT, run_cli


def test_committed_schemas_are_up_to_date():
    stale = stale_schemas(ROOT / "schemas")
    assert stale == [], f"schemas/ is stale ({stale}); run `billing-reconciler schemas`"


def test_schemas_command_writes_one_schema_per_kind_and_a_combined_one(tmp_path: Path):
    result = run_cli("schemas", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(["BillableMetric.schema.json", "Contract.schema.json", "Customer.schema.json",
                            "Product.schema.json", "RateCard.schema.json", COMBINED])
    assert run_cli("schemas", "--out", "out", "--check", cwd=tmp_path).returncode == 0
    (tmp_path / "out" / "Contract.schema.json").write_text("{}")
    check = run_cli("schemas", "--out", "out", "--check", cwd=tmp_path)
    assert check.returncode == 1 and "Contract.schema.json: out of date" in check.stderr


def test_example_manifests_satisfy_the_combined_schema():
    schema = json.loads((ROOT / "schemas" / COMBINED).read_text())
    yaml = YAML(typ="safe")
    docs = [d for path in sorted(EXAMPLE_MANIFESTS.rglob("*.yaml")) for d in yaml.load_all(path.read_text())]
    validator = jsonschema.Draft202012Validator(schema)
    for doc in docs:
        # JSON Schema sees text, as an editor does.
        validator.validate(json.loads(json.dumps(doc, default=str)))


def test_combined_schema_rejects_an_unknown_field():
    schema = json.loads((ROOT / "schemas" / COMBINED).read_text())
    doc = {"apiVersion": "billing-reconciler/v1", "kind": "Customer", "metadata": {"name": "x"},
           "spec": {"name": "X", "nmae": "typo"}}
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        assert "nmae" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("schema accepted an unknown field")
