"""The library entry points the CLI wires together: load, plan, apply.

Usable from Python: `plan_from_tree(store, "manifests")`, `apply_plan(...)`.
"""

from __future__ import annotations

from pathlib import Path

from .manifests import ManifestErrors, load_manifests
from .manifests.cache import ManifestCache
from .plan.plan import Plan
from .plan.planner import build_plan
from .store.store import Store


def plan_from_tree(store: Store, manifests_dir: str | Path, *, cache: ManifestCache | None = None,
                   targets: tuple[str, ...] = (), prune: bool = False, replace: tuple[str, ...] = ()) -> Plan:
    result = load_manifests(manifests_dir, cache=cache)
    if result.problems:
        raise ManifestErrors(result.problems)
    snapshot = store.snapshot()
    return build_plan(result.manifests, snapshot, manifests_digest=result.digest, targets=targets,
                      prune=prune, replace=replace)
