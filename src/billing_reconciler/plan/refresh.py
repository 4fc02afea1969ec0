"""Refresh: bring a snapshot's objects up to what the backend holds now, through the readers.

Terraform's refresh, for the embedded backend made cheap: the emulator bumps an object's revision
whenever it changes, and the store remembers the revision each body was read at, so only objects
that changed since (by an apply or behind the tool's back) are read again. An object the backend
no longer holds, or holds archived, leaves the snapshot's objects for `snapshot.gone`: the plan
makes it again.
"""

from __future__ import annotations

from ..apply.backends import Backend
from ..specform import spec_text
from ..store.store import Snapshot, Store
from .readers import Keys, credit_type_names, read


def refresh(store: Store, snapshot: Snapshot, backend: Backend) -> Snapshot:
    stale = [obj for obj in snapshot.objects.values()
             if obj.backend_revision is None or obj.backend_revision != obj.refreshed_revision]
    if not stale:
        return snapshot
    # A contract names its customer's billing provider configuration: every mapping is needed.
    snapshot.load_items()
    with store.reading() as conn:
        session = backend.session(conn)
        keys = Keys({obj.remote_id: obj.key for obj in snapshot.objects.values()},
                    {item.remote_id: item.key for obj in snapshot.objects.values() for item in obj.items
                     if not item.archived},
                    credit_type_names(session))
        reads = _read_all(session, stale, getattr(backend, "parallelism", 1)) \
            if getattr(backend, "remote", False) else (session.get(obj.kind, obj.remote_id) for obj in stale)
        for obj, api in zip(stale, reads):
            if api is None or api.get("archived_at") is not None:
                snapshot.gone[obj.address] = snapshot.objects.pop(obj.address)
                continue
            obj.refreshed(spec_text(read(obj.kind, api, keys)))
    return snapshot


def _read_all(session, objects: list, parallelism: int) -> list:
    """A remote backend's objects read concurrently (at most `parallelism` requests in flight),
    in the order of `objects`."""
    from concurrent.futures import ThreadPoolExecutor

    if parallelism <= 1 or len(objects) < 2:
        return [session.get(obj.kind, obj.remote_id) for obj in objects]
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="refresh") as pool:
        return list(pool.map(lambda obj: session.get(obj.kind, obj.remote_id), objects))
