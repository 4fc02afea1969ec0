"""The library entry points the CLI wires together: load, plan, apply.

Usable from Python: `plan_from_tree(store, "manifests")`, `apply_plan(...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .manifests import ManifestErrors, load_manifests
from .manifests.cache import ManifestCache
from .plan.plan import Plan
from .plan.planner import build_plan
from .store.store import Snapshot, Store

if TYPE_CHECKING:
    from .apply.backends import Backend


def default_backend() -> Backend:
    from .apply.backends.embedded import EmbeddedBackend

    return EmbeddedBackend()


def current_state(store: Store, backend: Backend | None = None, *, refresh: bool = True) -> Snapshot:
    """The store's snapshot, refreshed from the backend unless refresh is False (--no-refresh)."""
    snapshot = store.snapshot()
    if refresh and snapshot.initialized:
        from .plan.refresh import refresh as refresh_from

        refresh_from(store, snapshot, backend or default_backend())
    return snapshot


def plan_from_tree(store: Store, manifests_dir: str | Path, *, cache: ManifestCache | None = None,
                   targets: tuple[str, ...] = (), prune: bool = False, replace: tuple[str, ...] = (),
                   backend: Backend | None = None, refresh: bool = True) -> Plan:
    result = load_manifests(manifests_dir, cache=cache)
    if result.problems:
        raise ManifestErrors(result.problems)
    snapshot = current_state(store, backend, refresh=refresh)
    return build_plan(result.manifests, snapshot, manifests_digest=result.digest, targets=targets,
                      prune=prune, replace=replace)


def usage_filter_lookup(store: Store, snapshot: Snapshot, backend: Backend | None = None):
    """contract key -> its usage filters as the backend holds them, oldest first, each with its start."""
    from .plan.readers import usage_filter_periods

    backend = backend or default_backend()

    def lookup(contract_key: str) -> list[dict]:
        obj = snapshot.objects.get(f"Contract/{contract_key}")
        if obj is None:
            return []
        with store.reading() as conn:
            api = backend.session(conn).get("Contract", obj.remote_id)
        return usage_filter_periods(api) if api else []

    return lookup


def billing_state(store: Store, backend: Backend | None = None):
    """What the rating engine rates: the objects as the backend reports them."""
    from .rating.state import BillingState

    snapshot = current_state(store, backend)
    return BillingState.from_snapshot(snapshot, usage_filter_lookup(store, snapshot, backend))
