"""Write canonical specs back as manifest files (import/export), in the canonical layout:
one file per object, `<dir>/<kind>/<key>.yaml`, fields in the models' order."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..money import format_decimal
from .model import API_VERSION, SPEC_MODELS
from .validate import _model_in

KIND_DIRS = {"BillableMetric": "billable-metrics", "Product": "products", "RateCard": "rate-cards",
             "Customer": "customers", "Contract": "contracts"}


def order_like_model(model: Any, value: Any) -> Any:
    """Reorder dict keys to the model's field order (the order a person reads them in)."""
    if isinstance(value, list):
        return [order_like_model(model, v) for v in value]
    if not isinstance(value, dict) or model is None or not hasattr(model, "model_fields"):
        return value
    fields = list(model.model_fields)
    out = {}
    for name in sorted(value, key=lambda k: (fields.index(k) if k in fields else len(fields), k)):
        sub = _model_in(model.model_fields[name].annotation) if name in model.model_fields else None
        out[name] = order_like_model(sub, value[name])
    return out


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    yaml.representer.add_representer(
        Decimal, lambda r, d: r.represent_scalar("tag:yaml.org,2002:float", format_decimal(d)))
    return yaml


def manifest_document(kind: str, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": key},
            "spec": order_like_model(SPEC_MODELS[kind], spec)}


def dump_document(document: dict[str, Any]) -> str:
    """The document in the exact form `fmt` writes, so imported files pass `fmt --check`."""
    from .fmt import format_text

    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    return format_text(buffer.getvalue()) or buffer.getvalue()


def write_manifests(objects: list[tuple[str, str, dict[str, Any]]], directory: Path) -> list[Path]:
    written = []
    for kind, key, spec in objects:
        path = directory / KIND_DIRS[kind] / f"{key}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_document(manifest_document(kind, key, spec)))
        written.append(path)
    return written
