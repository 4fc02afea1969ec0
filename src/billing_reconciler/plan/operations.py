"""Operations: immutable values naming one billing API call each.

The same Operation objects are rendered for review and executed by the applier, so what a
reviewer approved is what runs. The catalog maps each op name to its endpoint.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    ARCHIVE = "archive"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "archive": "-"}[self.value]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may hold {placeholders} filled from the body's ids


CATALOG: dict[str, Endpoint] = {
    "create_billable_metric": Endpoint("POST", "/v1/billable-metrics/create"),
    "update_billable_metric": Endpoint("PUT", "/v1/billable-metrics/{billable_metric_id}"),
    "archive_billable_metric": Endpoint("POST", "/v1/billable-metrics/archive"),
    "create_product": Endpoint("POST", "/v1/contract-pricing/products/create"),
    "update_product": Endpoint("POST", "/v1/contract-pricing/products/update"),
    "archive_product": Endpoint("POST", "/v1/contract-pricing/products/archive"),
    "create_rate_card": Endpoint("POST", "/v1/contract-pricing/rate-cards/create"),
    "update_rate_card": Endpoint("POST", "/v1/contract-pricing/rate-cards/update"),
    "add_rates": Endpoint("POST", "/v1/contract-pricing/rate-cards/addRates"),
    "archive_rate_card": Endpoint("POST", "/v1/contract-pricing/rate-cards/archive"),
    "create_customer": Endpoint("POST", "/v1/customers"),
    "set_customer_name": Endpoint("POST", "/v1/customers/{customer_id}/setName"),
    "set_ingest_aliases": Endpoint("POST", "/v1/customers/{customer_id}/setIngestAliases"),
    "set_custom_field_values": Endpoint("POST", "/v1/customFields/setValues"),
    "delete_custom_field_values": Endpoint("POST", "/v1/customFields/deleteValues"),
    "set_customer_billing_provider_configurations": Endpoint("POST", "/v1/setCustomerBillingProviderConfigurations"),
    "archive_customer_billing_provider_configurations": Endpoint("POST", "/v1/archiveCustomerBillingProviderConfigurations"),
    "archive_customer": Endpoint("POST", "/v1/customers/archive"),
    "create_customer_commit": Endpoint("POST", "/v1/contracts/customerCommits/create"),
    "create_customer_credit": Endpoint("POST", "/v1/contracts/customerCredits/create"),
    "create_contract": Endpoint("POST", "/v1/contracts/create"),
    "edit_contract": Endpoint("POST", "/v2/contracts/edit"),
    "set_usage_filter": Endpoint("POST", "/v1/contracts/setUsageFilter"),
    "archive_contract": Endpoint("POST", "/v1/contracts/archive"),
}

# Operations that bring a whole object into being or archive it; all others edit one.
OBJECT_CREATES = frozenset({"create_billable_metric", "create_product", "create_rate_card", "create_customer",
                            "create_contract"})
OBJECT_ARCHIVES = frozenset({"archive_billable_metric", "archive_product", "archive_rate_card",
                             "archive_customer", "archive_contract"})

PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+/[a-z0-9][a-z0-9._-]*)((?:\.[a-z_]+\[[a-z0-9][a-z0-9._-]*\])?)\.id\}")
APPLY_TIME_HOUR = "${apply.next_hour}"


def ref(address: str, list_name: str | None = None, key: str | None = None) -> str:
    """Placeholder for an id assigned earlier in the same apply: ${Customer/acme.id}."""
    if list_name is None:
        return f"${{{address}.id}}"
    return f"${{{address}.{list_name}[{key}].id}}"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    # How the API makes this change when it is not a plain update: "replace" (an override is
    # removed then added), "archive", "remove".
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"path": self.path, "before": self.before, "after": self.after}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class ItemEffect:
    """What an operation does to a keyed sub-item in the store."""

    list_name: str
    key: str
    effect: str  # "add" | "archive" | "update"
    body: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list_name, "key": self.key, "effect": self.effect, "body": self.body}


class Addressed:
    """`kind` and `key` of anything with an `address` (`Kind/key`)."""

    address: str

    @property
    def kind(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.address.split("/", 1)[1]


@dataclass(frozen=True)
class Operation(Addressed):
    op: str
    address: str
    action: Action
    request: Request
    changes: tuple[Change, ...] = ()
    depends_on: tuple[str, ...] = ()
    reason: str = ""
    # The object's spec once this operation has run (None: unchanged), and its item effects:
    # how the applier brings the store in line after the backend accepted the request.
    spec_after: dict[str, Any] | None = None
    spec_digest: str | None = None
    items: tuple[ItemEffect, ...] = field(default=())
    drift: bool = False


    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "address": self.address,
            "action": self.action.value,
            "reason": self.reason,
            "drift": self.drift,
            "request": self.request.to_json(),
            "changes": [c.to_json() for c in self.changes],
            "depends_on": list(self.depends_on),
            "spec_after": self.spec_after,
            "spec_digest": self.spec_digest,
            "items": [i.to_json() for i in self.items],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        req = data["request"]
        return cls(
            op=data["op"],
            address=data["address"],
            action=Action(data["action"]),
            request=Request(req["method"], req["path"], req["body"]),
            changes=tuple(Change(c["path"], c["before"], c["after"], c.get("note", "")) for c in data.get("changes", [])),
            depends_on=tuple(data.get("depends_on", [])),
            reason=data.get("reason", ""),
            spec_after=data.get("spec_after"),
            spec_digest=data.get("spec_digest"),
            items=tuple(ItemEffect(i["list"], i["key"], i["effect"], i.get("body")) for i in data.get("items", [])),
            drift=bool(data.get("drift", False)),
        )


def make_request(op: str, body: dict[str, Any]) -> Request:
    """The request for `op`: the ids its path names move from the body into the path (the API
    takes them there only, and refuses them as unknown body fields)."""
    endpoint = CATALOG[op]
    path = endpoint.path
    names = re.findall(r"\{([a-z_]+)\}", path)
    for name in names:
        path = path.replace("{" + name + "}", str(body.get(name, "{" + name + "}")))
    if names:
        body = {k: v for k, v in body.items() if k not in names}
    return Request(endpoint.method, path, body)
