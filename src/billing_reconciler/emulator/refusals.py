"""A refused request: its status, the field at fault, and what is wrong, as the API says it."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastjsonschema

Branch = Callable[[dict[str, Any]], Callable[[Any], Any]]
_NAME_ROOT = re.compile(r"^data\.?")


class RequestRefused(Exception):
    """The API's refusal of a request: HTTP status, the field at fault (None: the whole request)."""

    def __init__(self, status: int, field: str | None, message: str):
        super().__init__(status, field, message)
        self.status = status
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.message} (HTTP {self.status})"


def explain(error: fastjsonschema.JsonSchemaValueException, branch: Branch) -> tuple[str, str]:
    """(field, message) for fastjsonschema's error: the field as a JSON path into the body
    (`commits[0].type`, not `data.commits[0].type`), the message as the API would put it.
    `branch` gives a validator for one oneOf/anyOf branch, to say why each shape does not fit."""
    field = _NAME_ROOT.sub("", error.name or "")
    value, definition, rule = error.value, error.definition or {}, error.rule
    if rule == "additionalProperties":
        known = sorted(definition.get("properties", {}))
        unknown = sorted(k for k in value if k not in known) if isinstance(value, dict) else []
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return _join(field, unknown[0]), f"unknown field '{unknown[0]}'{hint}"
    if rule == "required" and isinstance(value, dict):
        missing = [k for k in definition.get("required", []) if k not in value]
        if missing:
            return _join(field, missing[0]), "required field is missing"
    if rule == "type" or (rule == "multipleOf" and definition.get("multipleOf") == 1):
        expected = _expected_type(definition)
        return field, f"must be {expected}, not {_json_type(value)}"
    if rule == "enum":
        allowed = ", ".join(json.dumps(v) for v in definition["enum"])
        return field, f"{_show(value)} is not allowed; use one of {allowed}"
    if rule == "format":
        return field, f"{_show(value)} is not a valid {definition['format']}"
    if rule in ("oneOf", "anyOf"):
        return field, _explain_choice(branch, definition[rule], value, error.message)
    return field, _NAME_ROOT.sub("", error.message).strip() or error.message


def _explain_choice(branch: Branch, branches: list[dict[str, Any]], value: Any, message: str) -> str:
    if "exactly by one" in message and "(0 matches" not in message:
        return "matches more than one of the allowed shapes"
    reasons = []
    for index, shape in enumerate(branches, 1):
        try:
            branch(shape)(value)
        except fastjsonschema.JsonSchemaValueException as error:
            field, why = explain(error, branch)
            reasons.append(f"shape {index}: {field + ': ' if field else ''}{why}")
    return f"matches none of the {len(branches)} allowed shapes ({'; '.join(reasons)})"


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    if not name:
        return prefix
    return prefix + name if name.startswith("[") else f"{prefix}.{name}"


def _expected_type(definition: dict[str, Any]) -> str:
    if definition.get("multipleOf") == 1 and definition.get("type") == "number":
        return "an integer"
    kinds = definition.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    names = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
             "integer": "an integer", "boolean": "true or false", "null": "null"}
    return " or ".join(names.get(k, k) for k in kinds)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def refused(status: int, message: str, field: str | None = None) -> RequestRefused:
    """A refusal made by the emulator's own checks (unknown ids, conflicts), not by the schema."""
    return RequestRefused(status, field, message)
