"""billing-reconciler: usage-based billing configuration as code.

The library the CLI is a thin layer over (as sqlite-utils' CLI is over its db module)::

    import billing_reconciler as br

    store = br.Store("sqlite:///.billing-reconciler/state.db")
    plan = br.plan_from_tree(store, "manifests")  # refreshed from the backend first
    result = br.apply_plan(store, plan, br.EmbeddedBackend())  # the requests, executed
    objects = br.show_objects(store, "Customer/acme")          # as the backend holds them
    adopted = br.import_objects(store)            # backend objects no key maps yet
    state = br.billing_state(store)               # what the rating engine rates

Names are imported on first use, so `import billing_reconciler` stays cheap for the CLI. (`plan`
and `apply` are subpackages, hence `plan_from_tree` and `apply_plan`.)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_manifests": ("billing_reconciler.manifests", "load_manifests"),
    "Store": ("billing_reconciler.store.store", "Store"),
    "plan_from_tree": ("billing_reconciler.service", "plan_from_tree"),
    "apply_plan": ("billing_reconciler.apply.applier", "apply_plan"),
    "show_objects": ("billing_reconciler.service", "show_objects"),
    "import_objects": ("billing_reconciler.service", "import_objects"),
    "billing_state": ("billing_reconciler.service", "billing_state"),
    "plan_state": ("billing_reconciler.service", "plan_state"),
    "EmbeddedBackend": ("billing_reconciler.apply.backends.embedded", "EmbeddedBackend"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'billing_reconciler' has no attribute {name!r}")
    import importlib

    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
