"""Opening the store for a command: read-only commands never create it, init does.

A read-only command (plan, show, history, invoices, ingest, apply) on a store that does not
exist, or exists without tables, fails with "run `billing-reconciler init`" and leaves no file
behind; only `init` creates the SQLite file and its directories.
"""

from __future__ import annotations

from .store import NotInitialized, Store
from .urls import display


def open_existing(url: str) -> Store:
    """The store at `url`, which must exist and be initialised (StoreMissing / NotInitialized)."""
    store = Store(url, create=False)
    lineage, _serial = store.state()
    if lineage is None:
        store.close()
        raise NotInitialized(f"the store {display(store.url)} is not initialised; run `billing-reconciler init` "
                             "(with the same --store)")
    return store


def open_for_init(url: str) -> Store:
    return Store(url, create=True)
