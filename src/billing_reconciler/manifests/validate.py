"""One raw YAML document -> a validated Manifest, or problems with field paths."""

from __future__ import annotations

import difflib
import re
import typing
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from ..canonical import canonicalize
from ..redaction import NOTHING_MARKED, SENSITIVE, Redactor, field_name_of
from ..specform import spec_digest
from . import from_env
from . import model as m
from .document import Manifest
from .errors import Path, PendingProblem
from .lifecycle import lifecycle_of, lifecycle_problems
from .rules import check_raw, check_spec
from .types import calendar_problem

ENVELOPE_FIELDS = ("apiVersion", "kind", "metadata", "spec")


def validate_document(raw: Any, file: str, index: int) -> tuple[Manifest | None, list[PendingProblem]]:
    if not isinstance(raw, dict):
        return None, [PendingProblem(file, index, None, (),
                                     "a manifest document must be a mapping with apiVersion, kind, metadata and spec")]

    kind = raw.get("kind")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    # Name the object in every problem, the envelope's included, as far as it can be read.
    address = (f"{kind}/{name}" if isinstance(name, str) else kind) if isinstance(kind, str) else None

    def problem(path: Path, message: str, at_key: bool = False) -> PendingProblem:
        return PendingProblem(file, index, address, path, message, at_key=at_key)

    problems: list[PendingProblem] = []
    for key in raw:
        if key not in ENVELOPE_FIELDS:
            problems.append(problem((key,), f"unknown field '{key}'{_did_you_mean(str(key), ENVELOPE_FIELDS)}",
                                    at_key=True))

    api_version = raw.get("apiVersion")
    if api_version is None:
        problems.append(problem((), f"missing required field 'apiVersion'; add apiVersion: {m.API_VERSION}"))
    elif api_version != m.API_VERSION:
        problems.append(problem(("apiVersion",), f"unknown apiVersion {_describe(api_version)}; use {m.API_VERSION}"))

    kinds = ", ".join(m.KIND_ORDER)
    if kind is None:
        problems.append(problem((), f"missing required field 'kind' (one of {kinds})"))
        return None, problems
    if not isinstance(kind, str):
        problems.append(problem(("kind",), f"kind must be one of {kinds}; got {_describe(kind)}"))
        return None, problems
    if kind not in m.SPEC_MODELS:
        problems.append(problem(("kind",), f"unknown kind '{kind}'{_did_you_mean(kind, m.KIND_ORDER)} (kinds: {kinds})"))
        return None, problems

    metadata_model = _validate_model(m.Metadata, raw, "metadata", problems, file, index, address)
    checked_spec, references = from_env.stand_ins(raw.get("spec"))
    spec_model = _validate_model(m.SPEC_MODELS[kind], {**raw, "spec": checked_spec} if references else raw, "spec",
                                 problems, file, index, address, redactor=_redactor(metadata))
    if spec_model is not None:
        for path, message in check_spec(kind, spec_model):
            problems.append(problem(path, message))
    for path, message in check_raw(kind, raw.get("spec")):
        problems.append(problem(path, message))
    for path, message in from_env.shape_problems(raw.get("spec")):
        problems.append(problem(("spec", *path), message))
    if metadata_model is not None:
        for path, message in lifecycle_problems(kind, metadata_model.name, metadata_model):
            problems.append(problem(path, message))
    if problems or spec_model is None or metadata_model is None:
        return None, problems

    spec = canonical_dump(spec_model.model_dump(exclude_none=True))
    from_env.put_back(spec, references)
    labels = dict(metadata_model.labels or {})
    sensitive = tuple(metadata_model.sensitive or ()) + from_env.sensitive_paths(spec)
    return Manifest(kind, metadata_model.name, spec, file, index, spec_digest(spec), labels, sensitive,
                    lifecycle_of(metadata_model)), []


def canonical_dump(value: Any) -> Any:
    """canonical.canonicalize() of a model dump, about twice as fast (it was a fifth of a cold
    load): plain values are copied without a call, and UTC datetimes, which a dump is full of,
    are formatted without strftime. Anything else goes through canonicalize() itself; a test
    checks that both agree."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            item_kind = type(item)
            if item_kind is str or item_kind is int or item_kind is bool:
                out[key] = item
                continue
            if item_kind is datetime and item.tzinfo is timezone.utc and item.year >= 1000:
                out[key] = item.isoformat()[:-6] + "Z"  # '...+00:00' -> '...Z', as format_timestamp writes it
                continue
            item = canonical_dump(item)
            if item is None or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if kind is list:
        return [item if type(item) is str else canonical_dump(item) for item in value]
    if kind is datetime and value.tzinfo is timezone.utc and value.year >= 1000:
        return value.isoformat()[:-6] + "Z"
    return canonicalize(value)


def raw_identity(raw: Any) -> tuple[str, str] | None:
    """(kind, name) of a document that failed validation, when both can still be read."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("kind")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not (isinstance(kind, str) and isinstance(name, str) and name):
        return None
    if kind not in m.SPEC_MODELS:
        # A misspelt kind ('Custmer') still defines its object for the reference checks, so that
        # the one typo is reported once, not again as "Customer/x does not exist" elsewhere.
        close = difflib.get_close_matches(kind, m.KIND_ORDER, n=1, cutoff=0.8)
        if not close:
            return None
        kind = close[0]
    return kind, name


def _redactor(metadata: Any) -> Redactor:
    """What the document marks sensitive, read from the raw metadata (it may not validate)."""
    entries = metadata.get("sensitive") if isinstance(metadata, dict) else None
    if not isinstance(entries, list):
        return NOTHING_MARKED
    return Redactor(frozenset(field_name_of(e) for e in entries if isinstance(e, str)))


class Hidden:
    """The value of a secret field in an error message: its kind, never the value itself."""

    def __init__(self, value: Any):
        self.what = "a number" if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            "a value" if not isinstance(value, (dict, list)) else _describe(value)
        self.quotable = isinstance(value, (int, float))

    def __str__(self) -> str:
        return SENSITIVE

    __repr__ = __str__


def _validate_model(model: type[BaseModel], raw: dict[str, Any], field: str, problems: list[PendingProblem],
                    file: str, index: int, address: str, redactor: Redactor = NOTHING_MARKED) -> BaseModel | None:
    """Validate raw[field] (metadata or spec) against `model`, adding its problems. A value under
    a secret field (redaction.py) is never quoted in a message."""
    base: Path = (field,)
    data = raw.get(field)
    if data is None:
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        needs = f"; it needs at least {', '.join(required)}" if required else ""
        if field in raw:  # present but empty
            problems.append(PendingProblem(file, index, address, base, f"empty{needs}"))
        else:
            problems.append(PendingProblem(file, index, address, (), f"missing required field '{field}'{needs}"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if "input" in error and any(redactor.is_secret(part) for part in loc if isinstance(part, str)):
                error = {**error, "input": Hidden(error["input"])}
            problems.append(PendingProblem(file, index, address, (*base, *loc), explain(model, error),
                                           at_key=error["type"] == "extra_forbidden"))
        return None


_QUOTED = re.compile(r"'([^']*)'")


def explain(model: type[BaseModel], error: dict[str, Any]) -> str:
    """A pydantic error as a sentence that says what is wrong and how to fix it."""
    kind = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return f"missing required field '{loc[-1]}'"
    if kind == "extra_forbidden" and loc[-1] == "<<":
        return "YAML merge keys ('<<') are not supported; write the fields out"
    if kind == "extra_forbidden":
        allowed = fields_at(model, loc[:-1])
        hint = _did_you_mean(str(loc[-1]), allowed)
        return f"unknown field '{loc[-1]}'{hint}" + ("" if hint else f" (fields: {', '.join(allowed)})")
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        hint = _did_you_mean(str(value), _QUOTED.findall(expected)) if isinstance(value, str) else ""
        return f"{_describe(value)} is not allowed; use one of {expected}{hint}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return (f"'{value}' is not a valid key: use lower-case letters, digits, '.', '_' and '-', "
                "starting with a letter or digit")
    if kind.startswith("datetime") or kind.startswith("date"):
        invalid = calendar_problem(value.strip()) if isinstance(value, str) else None
        if invalid:
            return invalid
        return f"'{value}' is not a timestamp; write RFC 3339 in UTC, e.g. 2024-11-01T00:00:00Z"
    if kind == "model_type" or kind == "dict_type":
        return f"expected a mapping of fields, got {_describe(value)}"
    if kind == "list_type":
        return f"expected a list, got {_describe(value)}" + (
            f"; write [{value}] for a list of one" if isinstance(value, (str, int, float)) else "")
    if kind == "too_short":
        return "must not be empty"
    if kind == "string_type" and isinstance(value, Hidden):
        return f"expected text, got {value.what} (not shown: the field is sensitive)" + (
            "; put the value in quotes" if value.quotable else "")
    if kind == "string_type":
        hint = f"; quote it if it is text: '{value}'" if isinstance(value, (int, float, bool)) else ""
        return f"expected text, got {_describe(value)}{hint}"
    if kind.startswith(("decimal", "int_", "float", "int")) and kind not in ("greater_than", "less_than"):
        if kind in ("int_from_float", "decimal_max_places", "decimal_whole_digits"):
            return f"expected a whole number, got {_describe(value)}"
        return f"expected a number, got {_describe(value)}"
    if kind.startswith("bool"):
        return f"expected true or false, got {_describe(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_describe(value)}"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length')} characters"
    message = error["msg"]
    return f"{message[0].lower()}{message[1:]} (got {_describe(value)})"


def _describe(value: Any) -> str:
    """A YAML value as the author wrote it."""
    if isinstance(value, Hidden):
        return f"{value.what} (not shown: the field is sensitive)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
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
