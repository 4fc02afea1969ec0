"""Requests checked against Metronome's OpenAPI document, refused the way the API refuses them.

`match(method, path)` finds the operation a concrete path names; `validate_request(method, path,
body)` raises `RequestRefused` naming the field (a JSON path into the body) and what is wrong with
it: an unknown field, a missing required field, a wrong type, a value outside an enum.

Each operation's body schema is converted to a strict JSON Schema (see schema_convert) and
compiled by fastjsonschema into Python code the first time that operation is seen, then
cached. fastjsonschema was measured fastest on our real request bodies (bench/bench_validate.py)
and takes Decimal as a JSON number, so bodies are validated as built, without re-encoding.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

import fastjsonschema

from .schema_convert import SchemaConverter

DOCUMENT = "metronome-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
FORMATS = {"uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"}
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


@cache
def document() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(DOCUMENT).read_text(encoding="utf-8"))


# --- routing ----------------------------------------------------------------------------------

class _Routes:
    """Literal paths by dict lookup; templated ones by regex, the most literal segments first."""

    def __init__(self, paths: dict[str, Any]):
        self.literal: dict[str, str] = {}
        templated = []
        for template in paths:
            if "{" not in template:
                self.literal[template] = template
                continue
            pattern = re.sub(r"\\\{([^/{}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            literals = sum(1 for part in template.split("/") if part and "{" not in part)
            templated.append((-literals, template, re.compile(pattern + r"\Z")))
        self.templated = [(template, regex) for _, template, regex in sorted(templated)]

    def find(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path in self.literal:
            return path, {}
        for template, regex in self.templated:
            found = regex.match(path)
            if found:
                return template, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


@cache
def _routes() -> _Routes:
    return _Routes(document()["paths"])


def match(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The path template and path parameters of the operation `method path` names."""
    bare = path.split("?", 1)[0]
    if len(bare) > 1:
        bare = bare.rstrip("/")
    found = _routes().find(bare)
    if found is None:
        raise RequestRefused(404, None, f"no such endpoint: {method.upper()} {bare}")
    template, params = found
    if method.lower() not in document()["paths"][template]:
        allowed = ", ".join(m.upper() for m in METHODS if m in document()["paths"][template])
        raise RequestRefused(404, None, f"no such endpoint: {method.upper()} {bare} (it takes {allowed})")
    return template, params


# --- body validation --------------------------------------------------------------------------

class _Endpoint:
    """One operation's compiled body validator, and what is needed to explain a refusal."""

    def __init__(self, method: str, template: str):
        operation = document()["paths"][template][method]
        body = operation.get("requestBody")
        schema = (body or {}).get("content", {}).get("application/json", {}).get("schema")
        self.schema: dict[str, Any] | None = None
        self.check: Callable[[Any], Any] | None = None
        if schema is not None:
            self.schema = SchemaConverter(document()["components"]["schemas"]).root(schema)
            self.check = _compile(self.schema)
        self._branches: dict[int, Callable[[Any], Any]] = {}

    def branch(self, definition: dict[str, Any]) -> Callable[[Any], Any]:
        """A validator for one oneOf/anyOf branch (only used to explain a refusal)."""
        key = id(definition)
        if key not in self._branches:
            self._branches[key] = _compile({**definition, "definitions": self.schema.get("definitions", {})})
        return self._branches[key]


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema, formats=FORMATS, use_default=False)


_endpoints: dict[tuple[str, str], _Endpoint] = {}
_compiling = threading.Lock()


def _endpoint(method: str, template: str) -> _Endpoint:
    key = (method, template)
    found = _endpoints.get(key)
    if found is None:
        with _compiling:
            found = _endpoints.get(key)
            if found is None:
                found = _endpoints[key] = _Endpoint(method, template)
    return found


def validate_request(method: str, path: str, body: Any) -> None:
    """Refuse (RequestRefused) a request the API would refuse; return None when it is valid."""
    template, _ = match(method, path)
    endpoint = _endpoint(method.lower(), template)
    if endpoint.check is None:
        if body not in (None, {}):
            raise RequestRefused(400, None, f"{method.upper()} {template} takes no request body")
        return
    if body is None:
        # No body is read as an empty one, as the API parses it: its required fields still count.
        body = {}
    try:
        endpoint.check(body)
    except fastjsonschema.JsonSchemaValueException as error:
        field, message = _explain(endpoint, error)
        raise RequestRefused(400, field or None, message) from None


# --- explaining a refusal ---------------------------------------------------------------------


def _explain(endpoint: _Endpoint, error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
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
        return field, _explain_choice(endpoint, definition[rule], value, error.message)
    return field, _NAME_ROOT.sub("", error.message).strip() or error.message


def _explain_choice(endpoint: _Endpoint, branches: list[dict[str, Any]], value: Any, message: str) -> str:
    if "exactly by one" in message and "(0 matches" not in message:
        return "matches more than one of the allowed shapes"
    reasons = []
    for index, branch in enumerate(branches, 1):
        try:
            endpoint.branch(branch)(value)
        except fastjsonschema.JsonSchemaValueException as error:
            field, why = _explain(endpoint, error)
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
