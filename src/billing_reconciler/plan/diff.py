"""Field-level differences between two canonical specs, for display and for change rules.

Called only for objects whose digests differ (digests are compared first): DeepDiff is exact
but slow, so it never runs on unchanged objects. Keyed lists are compared item by item by key,
so a change reads `overrides[cloud-discount].multiplier`, not `overrides[0].multiplier`.
"""

from __future__ import annotations

from typing import Any

from .operations import Change

from ..specform import KEYED_LISTS  # noqa: F401 - compared by key, in any order


def keyed(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items or []}


def _keyed_view(spec: dict[str, Any]) -> dict[str, Any]:
    return {name: (keyed(value) if name in KEYED_LISTS else value) for name, value in spec.items()}


def format_field_path(parts: list[Any]) -> str:
    out = ""
    parent = None
    for part in parts:
        if parent in KEYED_LISTS and isinstance(part, str):
            out += f"[{part}]"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        parent = part
    return out


def _get(spec: dict[str, Any], parts: list[Any]) -> Any:
    node: Any = spec
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Changes as (path, before, after); a changed plain list is shown whole."""
    if before is None or after is None:
        return [Change("", before, after)]
    from deepdiff import DeepDiff  # imported on first use: a plan without changes never needs it

    b, a = _keyed_view(before), _keyed_view(after)
    diff = DeepDiff(b, a, view="tree", ignore_order=False, verbose_level=2)
    paths: dict[str, list[Any]] = {}
    for levels in diff.values():
        for level in levels:
            parts = level.path(output_format="list")
            # Cut at the first list index: a list of values changes as a whole.
            for i, part in enumerate(parts):
                if isinstance(part, int):
                    parts = parts[:i]
                    break
            paths.setdefault(format_field_path(parts), parts)
    return [Change(path, _get(b, parts), _get(a, parts)) for path, parts in sorted(paths.items())]


def top_level_changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of top-level fields whose values differ (cheap, no DeepDiff)."""
    names = sorted(set(before) | set(after))
    return [n for n in names if before.get(n) != after.get(n)]
