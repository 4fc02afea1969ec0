"""Seed the emulator from a store written before it existed (schema v4).

Such a store kept each object's applied manifest spec and the ids the old embedded backend gave
the object and its keyed items. Each object is rebuilt in the emulator under those same ids, in
the shape the emulator would have made from the object's requests, so the first plan after the
upgrade reads it back and finds nothing to do. Run by migration v5, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import canonical
from ..plan.api_body import to_api
from ..plan.readers import API_TYPES, CONTRACT_LISTS, CUSTOMER_LISTS
from ..specform import spec_digest, spec_text
from ..store.emulator_repo import EmulatorRepo
from .engine import api_shape, link_subscriptions, new_id, new_item

_SPECIFIER_LISTS = {"commits": ("commit_ids", ("commits",)),
                    "recurring_commits": ("recurring_commit_ids", ("recurring_commits",)),
                    "any_commits_or_credits": ("any_commit_or_credit_ids",
                                               ("commits", "credits", "recurring_commits", "recurring_credits"))}

ItemId = Callable[[str, str, str], str | None]  # (owner address, list, key) -> id


def seed_from_store(conn: Connection) -> None:
    objects = conn.execute(text("SELECT id, kind, key, remote_id, body, archived_at FROM objects")).all()
    if not objects:
        return
    address_of = {row[0]: f"{row[1]}/{row[2]}" for row in objects}
    ids = {(row[1], row[2]): row[3] for row in objects}
    items: dict[tuple[str, str, str], str] = {}
    filters: dict[str, list[dict[str, Any]]] = {}
    for owner, list_name, key, remote_id, body, archived in conn.execute(text(
            "SELECT owner_id, list_name, key, remote_id, body, archived_at FROM sub_items ORDER BY key, id")):
        if list_name == "usage_filter_schedule":
            filters.setdefault(address_of[owner], []).append(canonical.loads(body))
        elif archived is None:
            items[(address_of[owner], list_name, key)] = remote_id

    def id_of(kind: str, key: str) -> str:
        return ids.get((kind, key), key)

    def item_id(owner: str, list_name: str, key: str) -> str | None:
        return items.get((owner, list_name, key))

    repo = EmulatorRepo(conn)
    for _row_id, kind, key, remote_id, body, archived in objects:
        spec = canonical.loads(body)
        api = api_object(kind, f"{kind}/{key}", spec, remote_id, id_of, item_id, filters.get(f"{kind}/{key}"))
        if archived is not None:
            api["archived_at"] = canonical.canonicalize(archived) if not isinstance(archived, str) else archived
        repo.put(API_TYPES[kind], api)
        # The digest's definition became specform's (keyed lists in key order): re-derived here.
        conn.execute(text("UPDATE objects SET body = :b, applied_digest = :d, refreshed_revision = NULL "
                          "WHERE kind = :k AND key = :key"),
                     {"b": spec_text(spec), "d": spec_digest(spec), "k": kind, "key": key})
    repo.flush()


def api_object(kind: str, address: str, spec: dict[str, Any], remote_id: str, id_of: Callable[[str, str], str],
               item_id: ItemId, filters: list[dict[str, Any]] | None) -> dict[str, Any]:
    lists = CONTRACT_LISTS if kind == "Contract" else CUSTOMER_LISTS if kind == "Customer" else ()
    api: dict[str, Any] = {"id": remote_id}
    if kind == "RateCard":
        api["rates"] = []
    for name, value in spec.items():
        if name in lists:
            api[name] = [_item(kind, address, spec, name, item, id_of, item_id) for item in value]
        elif kind == "Contract" and name == "usage_filter":
            history = filters or [value]
            api[name] = {"initial": history[0], "updates": history[1:]}
        elif kind == "Contract" and name == "billing_provider_configuration":
            bpc = dict(value)
            config_key = bpc.pop("billing_provider_configuration", None)
            if config_key is not None:
                customer = f"Customer/{spec['customer']}"
                bpc["billing_provider_configuration_id"] = item_id(customer, "customer_billing_provider_configurations",
                                                                   config_key) or config_key
            api[name] = bpc
        else:
            shaped = to_api({name: value}, id_of)
            api.update(api_shape(shaped) if kind == "Contract" else shaped)
    if kind == "Contract":
        temporary = {s["temporary_id"]: s["id"] for s in api.get("subscriptions", []) if s.get("temporary_id")}
        link_subscriptions(api, temporary)
    return api


def _item(kind: str, address: str, spec: dict[str, Any], name: str, item: dict[str, Any],
          id_of: Callable[[str, str], str], item_id: ItemId) -> dict[str, Any]:
    body = to_api(item, id_of)
    for extra in ("quantity_updates", "seat_updates"):  # sent by a later edit, kept on the item
        if extra in item:
            body[extra] = item[extra]
    for specifier in body.get("override_specifiers", []):
        for manifest_name, (api_name, owners) in _SPECIFIER_LISTS.items():
            if manifest_name in specifier:
                keys = specifier.pop(manifest_name)
                specifier[api_name] = [_first_id(address, owners, k, item_id) for k in keys]
    own_id = item_id(address, name, item["key"]) or new_id()
    if kind == "Contract":
        return new_item(body, own_id)
    return {"id": own_id, **body}


def _first_id(address: str, lists: tuple[str, ...], key: str, item_id: ItemId) -> str:
    for list_name in lists:
        found = item_id(address, list_name, key)
        if found is not None:
            return found
    return key
