"""API object -> manifest spec: the readers, the inverse of `api_body.to_api` and the builders.

A refresh reads each object from the backend and turns it back into the spec a manifest would
have: ids become keys (objects through the store's key <-> id mapping, keyed items through the
sub-item mapping), `product: {id}` becomes `product: key`, archived items are left out, and the
result is in the canonical form (`canonical.canonicalize`; `specform.comparable` when hashed).
The property `read(execute(request(spec))) == spec` is what makes a wrong request body show up
as a difference on the next plan.

An item the store has no key for (added behind the tool's back) gets the key `id-<its id>`, so
the plan can name it and archive or remove it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import canonical
from ..money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME
from .api_body import CREDIT_TYPE, REFERENCE_FIELDS, REFERENCE_LIST_FIELDS

UNKNOWN_ITEM_PREFIX = "id-"
# API field -> (manifest field, kind), the reverse of api_body's renames.
_REFERENCES = {api: (name, kind) for name, (api, kind) in REFERENCE_FIELDS.items()}
_REFERENCE_LISTS = {api: (name, kind) for name, (api, kind) in REFERENCE_LIST_FIELDS.items()}
_SPECIFIER_IDS = {"commit_ids": "commits", "recurring_commit_ids": "recurring_commits",
                  "any_commit_or_credit_ids": "any_commits_or_credits"}
CONTRACT_LISTS = ("commits", "credits", "overrides", "scheduled_charges", "discounts", "subscriptions",
                  "recurring_commits", "recurring_credits", "professional_services")
CUSTOMER_LISTS = ("customer_billing_provider_configurations", "customer_revenue_system_configurations",
                  "commits", "credits")  # customer-level commits and credits
_SERVER_FIELDS = frozenset({"id", "archived_at", "created_at", "created_by", "updates", "transitions",
                            "uniqueness_key"})


def unknown_item_key(item_id: str) -> str:
    return UNKNOWN_ITEM_PREFIX + item_id


def id_from_unknown_key(key: str) -> str | None:
    return key[len(UNKNOWN_ITEM_PREFIX):] if key.startswith(UNKNOWN_ITEM_PREFIX) else None


@dataclass
class Keys:
    """What a reader needs to turn ids back into keys."""

    objects: Mapping[str, str] = field(default_factory=dict)  # remote id -> key (ids are UUIDs: unique)
    items: Mapping[str, str] = field(default_factory=dict)  # item remote id -> key
    # credit type id -> its name, as the backend lists them (credit types are named, not keyed)
    credit_types: Mapping[str, str] = field(default_factory=lambda: {USD_CREDIT_TYPE_ID: USD_CREDIT_TYPE_NAME})

    def key_of(self, object_id: str) -> str:
        return self.objects.get(object_id, object_id)

    def credit_type_name(self, credit_type_id: str, fallback: str | None = None) -> str:
        return self.credit_types.get(credit_type_id) or fallback or credit_type_id

    def item_key(self, item_id: str) -> str:
        return self.items.get(item_id) or unknown_item_key(item_id)


def _from_api(value: Any, keys: Keys) -> Any:
    if isinstance(value, list):
        return [_from_api(v, keys) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in _REFERENCES and isinstance(item, str):
            field_name, kind = _REFERENCES[name]
            out[field_name] = keys.credit_type_name(item) if kind == CREDIT_TYPE else keys.key_of(item)
        elif name in _REFERENCE_LISTS and isinstance(item, list):
            out[_REFERENCE_LISTS[name][0]] = [keys.key_of(i) for i in item]
        elif name in ("product", "invoice_contract") and isinstance(item, dict) and "id" in item:
            out[name] = keys.key_of(item["id"])
        elif name == "credit_type" and isinstance(item, dict) and "id" in item:
            out["credit_type"] = keys.credit_type_name(item["id"], item.get("name"))
        elif name == "schedule_items" and isinstance(item, list):
            out[name] = [{k: _from_api(v, keys) for k, v in s.items() if k not in ("id", "invoice_id")} for s in item]
        else:
            out[name] = _from_api(item, keys)
    return out


def _top(api: dict[str, Any], keys: Keys, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return _from_api({k: v for k, v in api.items() if k not in _SERVER_FIELDS and k not in skip}, keys)


def _items(api: dict[str, Any], name: str, keys: Keys) -> list[dict[str, Any]]:
    out = []
    for item in api.get(name) or []:
        if item.get("archived_at") is not None:
            continue
        body = _from_api({k: v for k, v in item.items() if k not in ("id", "archived_at", "created_at")}, keys)
        out.append({"key": keys.item_key(item["id"]), **body})
    return out


def read_plain(api: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """BillableMetric, Product, RateCard: fields as sent, references by key."""
    return canonical.canonicalize(_top(api, keys))


def read_customer(api: dict[str, Any], keys: Keys) -> dict[str, Any]:
    spec = _top(api, keys, CUSTOMER_LISTS)
    for name in CUSTOMER_LISTS:
        spec[name] = _items(api, name, keys)
    return canonical.canonicalize(spec)


def read_contract(api: dict[str, Any], keys: Keys) -> dict[str, Any]:
    spec = _top(api, keys, (*CONTRACT_LISTS, "usage_filter", "billing_provider_configuration"))
    temporary = {s["id"]: s.get("temporary_id") for s in api.get("subscriptions") or []}
    for name in CONTRACT_LISTS:
        spec[name] = _items(api, name, keys)
        for raw, item in zip([i for i in api.get(name) or [] if i.get("archived_at") is None], spec[name]):
            _specifier_keys(item, keys)
            config = item.get("subscription_config")
            if config and config.get("subscription_id") in temporary:
                config["subscription_id"] = temporary[config["subscription_id"]] or config["subscription_id"]
    history = usage_filter_history(api)  # the filter in force last: as the manifest states it
    if history:
        spec["usage_filter"] = history[-1]
    bpc = api.get("billing_provider_configuration")
    if bpc:
        bpc = dict(bpc)
        config_id = bpc.pop("billing_provider_configuration_id", None)
        if config_id is not None:
            bpc["billing_provider_configuration"] = keys.item_key(config_id)
        spec["billing_provider_configuration"] = bpc
    return canonical.canonicalize(spec)


def _specifier_keys(item: dict[str, Any], keys: Keys) -> None:
    for specifier in item.get("override_specifiers") or []:
        for api_name, name in _SPECIFIER_IDS.items():
            if api_name in specifier:
                specifier[name] = [keys.item_key(i) for i in specifier.pop(api_name)]


def usage_filter_history(api_contract: dict[str, Any]) -> list[dict[str, Any]]:
    """The contract's usage filters, oldest first: the one it was created with, then each
    set_usage_filter (append-only). Entries without starting_at start with the contract."""
    uf = api_contract.get("usage_filter") or {}
    entries = ([uf["initial"]] if uf.get("initial") else []) + list(uf.get("updates") or [])
    return [canonical.canonicalize(e) for e in entries]


def usage_filter_periods(api_contract: dict[str, Any]) -> list[dict[str, Any]]:
    """The history with every entry's start: one without starting_at starts with the contract."""
    return [{**e, "starting_at": e.get("starting_at") or api_contract["starting_at"]}
            for e in usage_filter_history(api_contract)]


READERS: dict[str, Callable[[dict[str, Any], Keys], dict[str, Any]]] = {
    "BillableMetric": read_plain,
    "Product": read_plain,
    "RateCard": read_plain,
    "Customer": read_customer,
    "Contract": read_contract,
}

# The emulator's object type of each kind.
API_TYPES = {"BillableMetric": "billable_metric", "Product": "product", "RateCard": "rate_card",
             "Customer": "customer", "Contract": "contract"}
KINDS_OF_TYPE = {v: k for k, v in API_TYPES.items()}
# What a backend session lists besides the kinds: the credit types (GET /v1/credit-types/list).
LISTED_TYPES = {**API_TYPES, CREDIT_TYPE: "credit_type"}


def credit_type_names(session) -> dict[str, str]:
    """id -> name of every credit type the backend lists (USD always among them)."""
    names = {USD_CREDIT_TYPE_ID: USD_CREDIT_TYPE_NAME}
    names.update({c["id"]: c["name"] for c in session.list(CREDIT_TYPE) if c.get("id") and c.get("name")})
    return names


def read(kind: str, api: dict[str, Any], keys: Keys) -> dict[str, Any]:
    return READERS[kind](api, keys)
