"""Import: adopt the objects the backend holds that the store maps to no key.

Objects made in the billing app (or straight through the API) have ids but no keys. Each gets a
key made from its name (`Acme Corp` -> `acme-corp`, made unique within its kind with `-2`, `-3`),
and each of its keyed items one made from the item's name or its list (`commit`, `commit-2`).
The readers turn the objects into specs with references by those keys; the store records the
key <-> id mappings, so the next plan of the written manifests has nothing to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .apply.backends import Backend
from .plan.readers import CONTRACT_LISTS, CUSTOMER_LISTS, Keys, credit_type_names, read
from .plan.planner import KIND_ORDER
from .store.store import Store

_NOT_KEY = re.compile(r"[^a-z0-9._-]+")
ITEM_LISTS = {"Contract": CONTRACT_LISTS, "Customer": CUSTOMER_LISTS}


@dataclass
class Adopted:
    kind: str
    key: str
    remote_id: str
    spec: dict[str, Any]
    items: list[tuple[str, str, str]] = field(default_factory=list)  # (list, key, id)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.key}"


def slug(text: str, fallback: str) -> str:
    key = _NOT_KEY.sub("-", text.lower()).strip("-._")
    return key[:80] or fallback


def unique(key: str, used: set[str]) -> str:
    candidate, n = key, 1
    while candidate in used:
        n += 1
        candidate = f"{key}-{n}"
    used.add(candidate)
    return candidate


def _name(kind: str, api: dict[str, Any], object_keys: dict[str, str]) -> str:
    if api.get("name"):
        return str(api["name"])
    if kind == "Contract":
        customer = object_keys.get(api.get("customer_id", ""), "contract")
        return f"{customer}-{str(api.get('starting_at', ''))[:10].replace('-', '')}"
    return kind.lower()


def unmanaged_objects(store: Store, backend: Backend) -> list[Adopted]:
    """Every live backend object the store does not map, with its key and spec, in kind order."""
    snapshot = store.snapshot(include_archived=True)
    object_keys = {o.remote_id: o.key for o in snapshot.objects.values()}
    used = {kind: {o.key for o in snapshot.objects.values() if o.kind == kind} for kind in KIND_ORDER}
    found: list[tuple[str, str, dict[str, Any]]] = []
    with store.reading() as conn:
        session = backend.session(conn)
        for kind in KIND_ORDER:
            for api in session.list(kind):
                if api.get("archived_at") is not None or api["id"] in object_keys:
                    continue
                key = unique(slug(_name(kind, api, object_keys), kind.lower()), used[kind])
                object_keys[api["id"]] = key
                found.append((kind, key, api))
        credit_types = credit_type_names(session)
    item_keys: dict[str, str] = {}
    adopted = []
    for kind, key, api in found:
        items = []
        for list_name in ITEM_LISTS.get(kind, ()):
            taken: set[str] = set()
            singular = list_name.rstrip("s").replace("_", "-").replace("customer-", "")
            for item in api.get(list_name) or []:
                if item.get("archived_at") is not None:
                    continue
                item_key = unique(slug(str(item.get("name") or ""), singular) if item.get("name") else singular, taken)
                item_keys[item["id"]] = item_key
                items.append((list_name, item_key, item["id"]))
        adopted.append(Adopted(kind, key, api["id"], {}, items))
    keys = Keys(object_keys, item_keys, credit_types)
    for one, (kind, _key, api) in zip(adopted, found):
        one.spec = read(kind, api, keys)
    return adopted


def adopt(store: Store, adopted: list[Adopted], *, lock_timeout: float = 30.0) -> int:
    """Record the key <-> id mappings of adopted objects and their items, each object's body as
    read and its digest as the manifest written for it (so the next plan is empty). Bumps the
    serial: a plan made before the import is stale. Returns the new serial."""
    from .specform import spec_digest, spec_text
    from .store.writer import StoreWriter
    from .timeutil import utc_now

    with store.transaction(lock_timeout=lock_timeout, holder="import") as conn:
        lineage, serial = store.locked_state(conn)
        writer = StoreWriter(conn, utc_now())
        for one in adopted:
            writer.map_object(one.kind, one.key, one.remote_id)
            writer.put_object(one.kind, one.key, one.remote_id, spec_text(one.spec), spec_digest(one.spec), None,
                              created=True, archived=False)
            for list_name, item_key, item_id in one.items:
                writer.add_item(one.kind, one.key, list_name, item_key, item_id)
        writer.flush()
        writer.set_serial(serial + 1)
    return serial + 1
