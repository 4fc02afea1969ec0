"""`metadata.ignore_changes` paths: parsed, and applied to canonical specs.

A path is `spec.FIELD[.FIELD...]`, where a keyed list's items are selected by key
(`spec.commits[prepaid-2024].access_schedule`) or all of them (`spec.overrides[*].priority`).
As in Terraform, an ignored value is sent on create and never compared afterwards:

- `mask(desired, actual, paths)`: the desired spec with the actual values under the paths, so the
  per-kind planners see no difference there (and plan nothing for it);
- `strip(spec, paths)`: the spec without the values under the paths: what an object with ignored
  paths is digested as, on both sides (the manifest applied, the body the backend holds), so a
  difference under them is neither a change nor drift.

Pure functions over plain dicts: the store (drift), the planner and the loader all use them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

# One step: a field name, optionally followed by [key] or [*] (a keyed list's items).
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[([a-z0-9][a-z0-9._-]*|\*)\])?")
ALL = "*"

Step = tuple[str, "str | None"]  # (field, selector: an item key, ALL, or None)


def parse_path(path: str) -> tuple[Step, ...]:
    """'spec.commits[c1].access_schedule' -> (('commits', 'c1'), ('access_schedule', None))."""
    if not isinstance(path, str) or not path.startswith("spec."):
        raise ValueError(f"'{path}' is not a spec path; write spec.FIELD[.FIELD...], e.g. "
                         "spec.custom_fields.sfdc_account_id or spec.overrides[*].priority")
    steps: list[Step] = []
    at = len("spec")
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            raise ValueError(f"'{path}' is not a spec path (at '{path[at:]}'); write spec.FIELD[.FIELD...], with a "
                             "keyed list's items as FIELD[KEY] or FIELD[*], e.g. spec.commits[prepaid-2024].access_schedule")
        steps.append((match.group(1), match.group(2)))
        at = match.end()
    return tuple(steps)


def mask(desired: dict[str, Any], actual: dict[str, Any] | None, paths: Iterable[str]) -> dict[str, Any]:
    """`desired` with what `actual` holds under each path (absent where actual has nothing)."""
    out = copy.deepcopy(desired)
    for path in paths:
        _mask(out, actual or {}, parse_path(path))
    return out


def strip(spec: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """`spec` without anything under the paths."""
    out = copy.deepcopy(spec)
    for path in paths:
        _strip(out, parse_path(path))
    return out


def _keyed(items: Any) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items if isinstance(item, dict) and "key" in item} \
        if isinstance(items, list) else {}


def _mask(desired: dict[str, Any], actual: dict[str, Any], steps: tuple[Step, ...]) -> None:
    (name, selector), rest = steps[0], steps[1:]
    if selector is None:
        if not rest:
            if name in actual:
                desired[name] = copy.deepcopy(actual[name])
            else:
                desired.pop(name, None)
            return
        here, there = desired.get(name), actual.get(name)
        if here is None and not isinstance(there, dict):
            return
        if not isinstance(here, dict):
            here = desired[name] = {}
        _mask(here, there if isinstance(there, dict) else {}, rest)
        if not here:
            del desired[name]
        return
    mine, theirs = desired.get(name), _keyed(actual.get(name))
    if not rest and selector == ALL:  # every item: the list as the backend holds it
        if name in actual:
            desired[name] = copy.deepcopy(actual[name])
        else:
            desired.pop(name, None)
        return
    items = mine if isinstance(mine, list) else []
    keys = [selector] if selector != ALL else [k for k in _keyed(items) if k in theirs]
    for key in keys:
        index = next((i for i, item in enumerate(items) if isinstance(item, dict) and item.get("key") == key), None)
        if not rest:  # the whole item
            if key in theirs and index is not None:
                items[index] = copy.deepcopy(theirs[key])
            elif key in theirs:
                items.append(copy.deepcopy(theirs[key]))
            elif index is not None:
                del items[index]
        elif index is not None and key in theirs:  # an item new on either side plans as usual
            _mask(items[index], theirs[key], rest)
    if items:
        desired[name] = items
    else:
        desired.pop(name, None)


def _strip(spec: dict[str, Any], steps: tuple[Step, ...]) -> None:
    (name, selector), rest = steps[0], steps[1:]
    value = spec.get(name)
    if value is None:
        return
    if selector is None:
        if not rest:
            del spec[name]
        elif isinstance(value, dict):
            _strip(value, rest)
            if not value:
                del spec[name]
        return
    if not isinstance(value, list):
        return
    chosen = [isinstance(item, dict) and (selector == ALL or item.get("key") == selector) for item in value]
    if not rest:
        value[:] = [item for item, hit in zip(value, chosen) if not hit]
    else:
        for item, hit in zip(value, chosen):
            if hit:
                _strip(item, rest)
    if not value:
        del spec[name]
