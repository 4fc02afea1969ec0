"""The store: SQLite by default, PostgreSQL by URL."""

from .store import LockTimeout, NotInitialized, Snapshot, Store, StoredItem, StoredObject, StoreDamaged, StoreError, StoreMissing

__all__ = ["LockTimeout", "NotInitialized", "Snapshot", "Store", "StoreDamaged", "StoreError", "StoreMissing", "StoredItem", "StoredObject"]
