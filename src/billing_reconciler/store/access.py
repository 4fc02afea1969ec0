"""Opening the store for a command: read-only commands never create it, init does.

A read-only command (plan, show, history, invoices, ingest, apply) on a store that does not
exist, or exists without tables, fails with "run `billing-reconciler init`" and leaves no file
behind; only `init` creates the SQLite file and its directories.
"""

from __future__ import annotations

from .store import NotInitialized, Store, StoreDamaged, StoreError, damaged_tables_message
from .urls import display
from .version import missing_tables, read_schema


def open_existing(url: str) -> Store:
    """The store at `url`, which must exist, be whole and be initialised (StoreMissing,
    StoreDamaged, StoreError for a newer schema, NotInitialized)."""
    store = Store(url, create=False)
    try:
        check_whole(store)
    except StoreError:
        store.close()
        raise
    lineage, _serial = store.state()
    if lineage is None:
        store.close()
        raise NotInitialized(f"the store {display(store.url)} is not initialised; run `billing-reconciler init` "
                             "(with the same --store)")
    return store


def open_for_init(url: str) -> Store:
    return Store(url, create=True)


def check_whole(store: Store) -> None:
    """Refuse a store a newer release wrote, or one at this release's schema with tables missing."""
    with store.engine.connect() as conn:
        schema = read_schema(conn)
        refusal = schema.refusal()
        if refusal:
            raise StoreError(refusal)
        missing = missing_tables(conn) if schema.current else []
    if missing:
        raise StoreDamaged(damaged_tables_message(store.url, missing))
