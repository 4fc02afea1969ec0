"""One raw YAML document -> a validated Manifest, or problems with field paths."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from ..canonical import canonicalize, digest
from . import model as m
from .document import Manifest
from .errors import Path, PendingProblem
from .rules import check_spec

ENVELOPE_FIELDS = ("apiVersion", "kind", "metadata", "spec")


def validate_document(raw: Any, file: str, index: int) -> tuple[Manifest | None, list[PendingProblem]]:
    def problem(path: Path, message: str, address: str | None = None) -> PendingProblem:
        return PendingProblem(file, index, address, path, message)

    if not isinstance(raw, dict):
        return None, [problem((), "a manifest document must be a mapping with apiVersion, kind, metadata and spec")]

    problems: list[PendingProblem] = []
    for key in raw:
        if key not in ENVELOPE_FIELDS:
            problems.append(problem((key,), f"unknown field '{key}'{_did_you_mean(str(key), ENVELOPE_FIELDS)}"))

    api_version = raw.get("apiVersion")
    if api_version is None:
        problems.append(problem((), f"missing required field 'apiVersion'; add apiVersion: {m.API_VERSION}"))
    elif api_version != m.API_VERSION:
        problems.append(problem(("apiVersion",), f"unknown apiVersion '{api_version}'; use {m.API_VERSION}"))

    kind = raw.get("kind")
    if kind is None:
        problems.append(problem((), f"missing required field 'kind' (one of {', '.join(m.KIND_ORDER)})"))
        return None, problems
    if kind not in m.SPEC_MODELS:
        problems.append(problem(("kind",), f"unknown kind '{kind}'{_did_you_mean(str(kind), m.KIND_ORDER)} "
                                           f"(kinds: {', '.join(m.KIND_ORDER)})"))
        return None, problems

    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    address = f"{kind}/{name}" if isinstance(name, str) else kind
    metadata_model = _validate_model(m.Metadata, metadata, ("metadata",), problems, file, index, address)
    if "spec" not in raw:
        problems.append(problem((), "missing required field 'spec'", address))
        return None, problems
    spec_model = _validate_model(m.SPEC_MODELS[kind], raw["spec"], ("spec",), problems, file, index, address)
    if spec_model is not None:
        for path, message in check_spec(kind, spec_model):
            problems.append(problem(path, message, address))
    if problems or spec_model is None or metadata_model is None:
        return None, problems

    spec = canonicalize(spec_model.model_dump(exclude_none=True))
    labels = dict(metadata_model.labels or {})
    return Manifest(kind, metadata_model.name, spec, file, index, digest(spec), labels), []


def raw_identity(raw: Any) -> tuple[str, str] | None:
    """(kind, name) of a document that failed validation, when both can still be read."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("kind")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(kind, str) and kind in m.SPEC_MODELS and isinstance(name, str) and name:
        return kind, name
    return None


def _validate_model(model: type[BaseModel], data: Any, base: Path, problems: list[PendingProblem],
                    file: str, index: int, address: str) -> BaseModel | None:
    if data is None:
        problems.append(PendingProblem(file, index, address, base[:-1],
                                       f"missing required field '{base[-1]}'"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            problems.append(PendingProblem(file, index, address, (*base, *loc), explain(model, error)))
        return None


def explain(model: type[BaseModel], error: dict[str, Any]) -> str:
    """A pydantic error as a sentence that says what is wrong and how to fix it."""
    kind = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return f"missing required field '{loc[-1]}'"
    if kind == "extra_forbidden":
        allowed = fields_at(model, loc[:-1])
        hint = _did_you_mean(str(loc[-1]), allowed)
        return f"unknown field '{loc[-1]}'{hint}" + ("" if hint else f" (fields: {', '.join(allowed)})")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return f"'{value}' is not allowed; use one of {expected}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return (f"'{value}' is not a valid key: use lower-case letters, digits, '.', '_' and '-', "
                "starting with a letter or digit")
    if kind.startswith("datetime") or kind.startswith("date"):
        return f"'{value}' is not a timestamp; write RFC 3339 in UTC, e.g. 2024-11-01T00:00:00Z"
    if kind == "model_type" or kind == "dict_type":
        return f"expected a mapping of fields, got {_describe(value)}"
    if kind == "list_type":
        return f"expected a list, got {_describe(value)}"
    if kind == "too_short":
        return "must not be empty"
    message = error["msg"]
    return f"{message[0].lower()}{message[1:]} (got {_describe(value)})"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def fields_at(model: type[BaseModel], loc: Path) -> list[str]:
    """Field names of the model found by following `loc` from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        target = _model_in(current.model_fields[part].annotation) if _is_model(current) and part in current.model_fields else None
        if target is None:
            return []
        current = target
    return list(current.model_fields) if _is_model(current) else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if _is_model(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
