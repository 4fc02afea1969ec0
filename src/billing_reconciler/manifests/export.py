"""Write canonical specs back as manifest files (import/export), in the canonical layout:
one file per object, `<dir>/<kind>/<key>.yaml`, fields in the models' order."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..money import format_decimal
from .model import API_VERSION, SPEC_MODELS
from .safe_write import UnsafePath, safe_name, write_under
from .types import KEY_PATTERN
from .validate import _model_in

KIND_DIRS = {"BillableMetric": "billable-metrics", "Product": "products", "RateCard": "rate-cards",
             "Customer": "customers", "Contract": "contracts"}


def order_like_model(model: Any, value: Any) -> Any:
    """Reorder dict keys to the model's field order (the order a person reads them in)."""
    if isinstance(value, list):
        return [order_like_model(model, v) for v in value]
    if not isinstance(value, dict) or model is None or not hasattr(model, "model_fields"):
        return value
    by_name = {f.alias or name: f for name, f in model.model_fields.items()}  # `from` is the alias of from_
    fields = list(by_name)
    out = {}
    for name in sorted(value, key=lambda k: (fields.index(k) if k in fields else len(fields), k)):
        sub = _model_in(by_name[name].annotation) if name in by_name else None
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


def write_manifests(objects: list[tuple[str, str, dict[str, Any]]], directory: Path
                    ) -> tuple[list[tuple[int, Path]], list[tuple[int, str]]]:
    """Write each object as `<directory>/<kind dir>/<key>.yaml`: ([(index, path)], [(index, why not)]).

    A key that is not a valid manifest key (it could name a path: `/tmp/x`, `../../x`) is refused,
    as is any write through a symlink (safe_write.py): a manifest could not hold such a key anyway.
    """
    written: list[tuple[int, Path]] = []
    refused: list[tuple[int, str]] = []
    for index, (kind, key, spec) in enumerate(objects):
        if not isinstance(key, str) or not re.match(KEY_PATTERN, key) or not safe_name(f"{key}.yaml"):
            refused.append((index, f"key {key!r} is not a valid manifest key ({KEY_PATTERN}, at most 195 "
                                   "characters) and could name a path outside the import directory; rename the "
                                   "object in the billing system, or write its manifest by hand"))
            continue
        try:
            path = write_under(directory, (KIND_DIRS[kind], f"{key}.yaml"),
                               dump_document(manifest_document(kind, key, spec)))
        except UnsafePath as exc:
            refused.append((index, f"{exc}; remove the symlink or pass --out DIR"))
            continue
        except OSError as exc:
            refused.append((index, f"cannot write {directory / KIND_DIRS[kind] / (key + '.yaml')}: "
                                   f"{exc.strerror or exc}"))
            continue
        written.append((index, path))
    return written, refused
