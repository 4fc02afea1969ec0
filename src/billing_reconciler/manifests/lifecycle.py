"""Checks of a document's lifecycle metadata that need its kind: `ignore_changes` paths must
name fields the kind's spec can hold, and `moved_from` must not name the object's own key.

No store is needed: whether a former key is known is the planner's business (plan.moves).
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel

from ..ignorepaths import ALL, parse_path
from ..specform import KEYED_LISTS
from .errors import Path


def _unwrap(annotation: Any) -> tuple[str, Any]:
    """('list' | 'dict' | 'model' | 'value', the item or model type) of a field's annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            break
    if origin is list:
        return "list", typing.get_args(annotation)[0]
    if origin is dict:
        return "dict", None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "value", None


def ignore_path_problem(kind: str, path: str) -> str | None:
    """Why `path` cannot exist in a `kind` spec, with the way to write it; None when it can."""
    from .model import SPEC_MODELS

    steps = parse_path(path)
    model: Any = SPEC_MODELS[kind]
    where = "spec"
    for at, (name, selector) in enumerate(steps):
        if model == "dict":  # a free-form map (custom_fields): any key, nothing under it
            if selector is not None:
                return f"{where}.{name} is a value of the map {where}; it has no items to select with [...]"
            where, model = f"{where}.{name}", None
            continue
        if model is None:
            return f"{where} holds a plain value; nothing can be under it"
        fields = model.model_fields
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"did you mean {where}.{close[0]}?" if close else f"fields of {where}: {', '.join(fields)}"
            return f"{where} has no field '{name}' in a {kind}; {hint}"
        shape, inner = _unwrap(fields[name].annotation)
        here = f"{where}.{name}"
        if selector is not None:
            if shape != "list" or name not in KEYED_LISTS:
                return f"{here} is not a keyed list; [{selector}] selects items of a list whose items have a key"
            shape, inner = _unwrap(inner)
            here += f"[{selector}]" if selector != ALL else "[*]"
        elif shape == "list":
            if at + 1 < len(steps) and name in KEYED_LISTS:
                rest = "".join(f".{n}" + (f"[{sel}]" if sel else "") for n, sel in steps[at + 1:])
                return (f"{here} is a list: select its items by key or all of them, e.g. {here}[KEY]{rest} "
                        f"or {here}[*]{rest}")
            shape, inner = "value", None  # a plain list is compared whole: nothing under it
        where = here
        model = inner if shape == "model" else "dict" if shape == "dict" else None
    return None


def lifecycle_problems(kind: str, name: str, metadata: Any) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    for index, path in enumerate(getattr(metadata, "ignore_changes", None) or ()):
        message = ignore_path_problem(kind, path)
        if message:
            problems.append((("metadata", "ignore_changes", index), message))
    seen: set[str] = set()
    for index, key in enumerate(getattr(metadata, "moved_from", None) or ()):
        if key == name:
            problems.append((("metadata", "moved_from", index),
                             f"'{key}' is this object's own key; list only its former keys"))
        elif key in seen:
            problems.append((("metadata", "moved_from", index), f"'{key}' is listed twice; list it once"))
        seen.add(key)
    return problems


def lifecycle_of(metadata: Any) -> dict[str, Any]:
    """The lifecycle metadata as plain data (what the parse cache keeps); {} when none."""
    out: dict[str, Any] = {}
    if getattr(metadata, "moved_from", None):
        out["moved_from"] = list(metadata.moved_from)
    if getattr(metadata, "ignore_changes", None):
        out["ignore_changes"] = list(metadata.ignore_changes)
    if getattr(metadata, "protect", None) is not None:
        out["protect"] = bool(metadata.protect)
    return out
