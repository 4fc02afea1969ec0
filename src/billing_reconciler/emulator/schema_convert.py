"""OpenAPI 3.0 schema objects -> JSON Schema (draft 7), with the billing API's strictness.

- `$ref: #/components/schemas/X` becomes `#/definitions/X`; only the definitions a root reaches
  are converted, once each, so recursive schemas stay recursive.
- `nullable: true` adds "null" to the type (and `None` to an enum).
- `allOf` members are merged into one object (properties and required united) *before*
  strictness is added: a strict member on its own would refuse its siblings' fields.
- STRICT: an object schema that lists `properties` and declares no `additionalProperties`
  refuses unknown fields. A map the document leaves open (`additionalProperties: true` or a
  schema, or an object with no `properties`) stays exactly as open as it is written.
- `integer` is a number that is a multiple of 1, so an integral Decimal (JSON `5.0`) passes.
- Annotations (`description`, `example`, `x-*`, `discriminator`, `readOnly`, ...) are dropped.
"""

from __future__ import annotations

from typing import Any

COMPONENT_PREFIX = "#/components/schemas/"
DEFINITION_PREFIX = "#/definitions/"
# JSON Schema assertions OpenAPI 3.0 shares, copied as written.
ASSERTIONS = ("enum", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems",
              "maxItems", "minLength", "maxLength", "pattern", "multipleOf", "uniqueItems", "minProperties",
              "maxProperties", "required")
INTEGER = {"type": "number", "multipleOf": 1}


class SchemaConverter:
    """Converts schemas of one OpenAPI document; `root()` gives a self-contained JSON Schema."""

    def __init__(self, components: dict[str, Any]):
        self.components = components
        self.definitions: dict[str, Any] = {}

    def root(self, schema: dict[str, Any]) -> dict[str, Any]:
        self.definitions = {}
        out = self.convert(schema)
        if set(out) == {"$ref"}:
            # The body's own schema at the top, so errors are reported against it directly.
            out = dict(self.definitions[out["$ref"][len(DEFINITION_PREFIX):]])
        if self.definitions:
            out["definitions"] = self.definitions
        return out

    # --- one schema object ---------------------------------------------------------------------

    def convert(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            # OpenAPI 3.0 ignores a $ref's siblings; `nullable` beside it is honoured (its intent).
            out: dict[str, Any] = {"$ref": DEFINITION_PREFIX + self._define(schema["$ref"])}
            return {"anyOf": [{"type": "null"}, out]} if schema.get("nullable") else out
        if "allOf" in schema:
            merged, rest = self.merge_all_of(schema)
            out = self.convert(merged)
            return {"allOf": [out, *(self.convert(r) for r in rest)]} if rest else out
        out = {}
        kind = schema.get("type")
        if kind == "integer":
            out.update(INTEGER)
        elif isinstance(kind, str):
            out["type"] = kind
        for name in ASSERTIONS:
            if name in schema:
                out[name] = schema[name]
        if "properties" in schema:
            out["properties"] = {name: self.convert(sub) for name, sub in schema["properties"].items()}
        if "items" in schema:
            out["items"] = self.convert(schema["items"])
        for name in ("oneOf", "anyOf"):
            if name in schema:
                out[name] = [self.convert(sub) for sub in schema[name]]
        if "not" in schema:
            out["not"] = self.convert(schema["not"])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self.convert(extra)
        elif extra is False or ("properties" in schema and extra is None):
            out["additionalProperties"] = False
        if schema.get("nullable"):
            out = _nullable(out)
        return out

    def _define(self, ref: str) -> str:
        if not ref.startswith(COMPONENT_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}: only {COMPONENT_PREFIX}... is resolved")
        name = ref[len(COMPONENT_PREFIX):]
        if name not in self.definitions:
            self.definitions[name] = {}  # reserved first: a recursive reference finds it
            self.definitions[name] = self.convert(self.components[name])
        return name

    # --- allOf ---------------------------------------------------------------------------------

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                raise ValueError(f"$ref cycle through {ref!r}")
            seen.add(ref)
            schema = self.components[ref[len(COMPONENT_PREFIX):]]
        return schema

    def merge_all_of(self, schema: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One OpenAPI schema with the allOf members' properties and required united, and the
        members' oneOf/anyOf/not that cannot be merged (kept as separate constraints).

        Nullability is the allOf schema's own (`nullable: true` + `allOf: [$ref]` is "X or null").
        """
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        rest: list[dict[str, Any]] = []
        for member in schema["allOf"]:
            member = self.resolve(member)
            if "allOf" in member:
                member, more = self.merge_all_of(member)
                rest += more
            _merge_into(merged, member, rest)
        return merged, rest


def _merge_into(merged: dict[str, Any], member: dict[str, Any], rest: list[dict[str, Any]]) -> None:
    for name, value in member.items():
        if name == "properties":
            properties = dict(merged.get("properties", {}))
            for prop, sub in value.items():
                if prop in properties and properties[prop] != sub:
                    properties[prop] = {"allOf": [properties[prop], sub]}
                else:
                    properties[prop] = sub
            merged["properties"] = properties
        elif name == "required":
            merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
        elif name == "additionalProperties":
            # The narrower wins: false over a schema over true.
            current = merged.get("additionalProperties")
            if current is None or current is True or value is False:
                merged["additionalProperties"] = value
        elif name == "nullable":
            continue
        elif name in ("oneOf", "anyOf", "not") and name in merged:
            rest.append({name: value})
        elif name not in merged:
            merged[name] = value


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(out.get("type"), str):
        out = {**out, "type": [out["type"], "null"]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [{"type": "null"}, out]}
