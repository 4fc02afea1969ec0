"""JSON Schemas for every kind, generated from the models, for editors and CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMBINED = "billing-reconciler.schema.json"


def kind_schema(kind: str) -> dict[str, Any]:
    from .model import manifest_model  # pydantic models are slow to import; only `schemas` needs them

    from .descriptions import describe

    schema = manifest_model(kind).model_json_schema()
    describe(schema, kind)
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"{kind}.schema.json"
    schema["title"] = f"billing-reconciler {kind}"
    return schema


def combined_schema() -> dict[str, Any]:
    """One schema for editor use: any document of any kind, chosen by `kind`."""
    from .descriptions import OWN, describe
    from .model import KIND_ORDER, manifest_model

    defs: dict[str, Any] = {}
    branches = []
    for kind in KIND_ORDER:
        schema = manifest_model(kind).model_json_schema(ref_template="#/$defs/{model}")
        describe(schema, kind)
        defs.update(schema.pop("$defs", {}))
        defs[kind] = schema
        branches.append({
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"$ref": f"#/$defs/{kind}"},
        })
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": COMBINED,
        "title": "billing-reconciler manifest",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"kind": {"enum": list(KIND_ORDER), "description": OWN["kind"]}},
        "allOf": branches,
        "$defs": defs,
    }


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, deterministic."""
    from .model import KIND_ORDER

    out = {f"{kind}.schema.json": kind_schema(kind) for kind in KIND_ORDER}
    out[COMBINED] = combined_schema()
    return {name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in out.items()}


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Names of schema files that are missing or differ from what the models generate."""
    stale = []
    for name, text in render_schemas().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale
