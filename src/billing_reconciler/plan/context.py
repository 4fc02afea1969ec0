"""What the per-kind planners see: desired and actual state, id lookup, refusals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..canonical import dumps
from ..manifests.document import Manifest
from ..manifests.errors import Path, PendingProblem
from ..store.store import Snapshot, StoredObject
from .api_body import CREDIT_TYPE, to_api
from .operations import ref


@dataclass
class PlanContext:
    snapshot: Snapshot
    desired: dict[str, Manifest]
    creating: set[str] = field(default_factory=set)
    refusals: list[PendingProblem] = field(default_factory=list)

    def actual(self, address: str) -> StoredObject | None:
        return self.snapshot.objects.get(address)

    def id_of(self, kind: str, key: str) -> str:
        if kind == CREDIT_TYPE:  # by name (an unknown one is refused by credit_types.check_credit_types)
            return self.snapshot.credit_types.get(key, key)
        address = f"{kind}/{key}"
        stored = self.snapshot.objects.get(address)
        if stored is not None and address not in self.creating:
            return stored.remote_id
        return ref(address)

    def item_id(self, address: str, list_name: str, key: str) -> str:
        stored = self.snapshot.objects.get(address)
        if stored is not None and address not in self.creating:
            found = stored.item_id(list_name, key)
            if found is not None:
                return found
        return ref(address, list_name, key)

    def api(self, value: Any) -> Any:
        return to_api(value, self.id_of)

    def refuse(self, manifest: Manifest, path: Path, message: str) -> None:
        self.refusals.append(manifest.problem(path, message))


def schedule_item_id(owner_id: str, schedule: str, item: dict[str, Any]) -> str:
    """A schedule item's id, derived from its owner and content.

    The embedded backend gives schedule items content-derived ids, so the planner can name an
    item to remove without storing one row per item; a remote backend maps them to its own.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{owner_id}/{schedule}/{dumps(item)}"))
