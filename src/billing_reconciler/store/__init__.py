"""The store: SQLite by default, PostgreSQL by URL."""

from .store import LockTimeout, NotInitialized, Snapshot, Store, StoredItem, StoredObject, StoreError

__all__ = ["LockTimeout", "NotInitialized", "Snapshot", "Store", "StoreError", "StoredItem", "StoredObject"]
