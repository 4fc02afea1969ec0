from ..plan.support import account, store, store_url  # noqa: F401 - fixtures
