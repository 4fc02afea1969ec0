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
        for obj in stale:
            api = session.get(obj.kind, obj.remote_id)
            if api is None or api.get("archived_at") is not None:
                snapshot.gone[obj.address] = snapshot.objects.pop(obj.address)
                continue
            obj.refreshed(spec_text(read(obj.kind, api, keys)))
    return snapshot
