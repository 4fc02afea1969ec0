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


def _properties(node, where=""):
    """(where, name, schema) of every property of every object schema under `node`."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            if key != "properties":
                yield from _properties(value, f"{where}/{key}")
            else:
                for name, prop in value.items():
                    yield from _properties(prop, f"{where}.{name}")
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value, where)


def test_every_property_of_every_schema_has_a_description():
    # Editors show descriptions on hover. Mutations caught: a field added to a model with no
    # description in the OpenAPI document and none in manifests/descriptions.py's OWN; the walk
    # beside the request bodies broken (its fields fall back to nothing).
    from billing_reconciler.manifests.schema import render_schemas

    for name, text in render_schemas().items():
        missing = [where for where, prop in _properties(json.loads(text)) if where.count("/if") == 0
                   and not (isinstance(prop, dict) and prop.get("description"))]
        assert missing == [], f"{name}: properties without a description: {missing}"


def test_descriptions_come_from_the_openapi_document_where_it_has_them():
    # The manifest's Override.multiplier is the API's OverrideInput.multiplier (add_overrides on
    # create_contract); the text is the document's, read here from the document, not copied.
    # Mutation caught: OWN preferred over the document, or the wrong API field matched.
    from billing_reconciler.emulator.openapi import document
    from billing_reconciler.manifests.descriptions import OWN
    from billing_reconciler.manifests.schema import kind_schema

    components = document()["components"]["schemas"]
    schema = kind_schema("Contract")
    expected = components["OverrideInput"]["properties"]["multiplier"]["description"]
    assert schema["$defs"]["Override"]["properties"]["multiplier"]["description"] == expected
    assert expected != OWN["multiplier"]
    # A reference by key is ours: the API's product_id is an id, the manifest's product a key.
    assert schema["$defs"]["Commit"]["properties"]["product"]["description"] == OWN["product"]
