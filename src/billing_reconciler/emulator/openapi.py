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

import json
import re
import threading
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

import fastjsonschema

from .refusals import RequestRefused, explain
from .schema_convert import SchemaConverter

__all__ = ["RequestRefused", "document", "match", "validate_request"]

DOCUMENT = "metronome-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
FORMATS = {"uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"}


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
        field, message = explain(error, endpoint.branch)
        raise RequestRefused(400, field or None, message) from None
