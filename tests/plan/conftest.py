from .support import account, sqlite_store, store, store_url  # noqa: F401 - fixtures
