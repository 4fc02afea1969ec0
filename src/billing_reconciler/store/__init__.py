"""The store: SQLite by default, PostgreSQL by URL."""

from .store import LockTimeout, NotInitialized, Snapshot, Store, StoredItem, StoredObject, StoreError, StoreMissing

__all__ = ["LockTimeout", "NotInitialized", "Snapshot", "Store", "StoreError", "StoreMissing", "StoredItem", "StoredObject"]
