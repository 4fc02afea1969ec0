"""The Metronome emulator: executes billing API requests on API-shaped objects.

Every request is validated against the endpoint's OpenAPI schema before anything changes, then
executed with the API's semantics, from the body alone: creates build the object and give it and
each of its items a new id; `edit_contract` applies each add_/update_/archive_/remove_ key in
turn; `setUsageFilter` appends to the filter's history; archives archive; `addRates` appends. A
request that names an unknown id is refused with 404, as the API does, and nothing changes: the
handler works on a copy and the copy replaces the object only when the whole request succeeded.

Objects are kept in the shape the API's get endpoints return (ContractV2's `product: {id}`,
`credit_type: {id, name}`, items with ids, `archived_at`), through `store.emulator_repo`.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import canonical
from ..money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME
from .refusals import refused


def new_id() -> str:
    return str(uuid.UUID(bytes=uuid.uuid4().bytes))


def schedule_item_id(owner_id: str, schedule: str, item: dict[str, Any]) -> str:
    """A schedule item's id: derived from its owner and content, so a plan can name the item to
    remove from the refreshed object without one row per schedule item in the store."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{owner_id}/{schedule}/{canonical.dumps(item)}"))


CREDIT_TYPE_NAMES = {USD_CREDIT_TYPE_ID: USD_CREDIT_TYPE_NAME}

# Where each referenced id must point (field name -> object type); checked anywhere in a body.
REFERENCES = {
    "customer_id": "customer", "contract_id": "contract", "rate_card_id": "rate_card",
    "billable_metric_id": "billable_metric", "product_id": "product", "from_contract_id": "contract",
    "invoice_contract_id": "contract",
}
CREDIT_TYPE_FIELDS = ("credit_type_id", "custom_credit_type_id", "fiat_credit_type_id")
REFERENCE_LISTS = {"applicable_product_ids": "product", "composite_product_ids": "product",
                   "applicable_contract_ids": "contract"}

# Contract item lists: the edit keys that add, archive (or remove) and update them, and the
# field an update names its item by.
CONTRACT_LISTS = ("commits", "credits", "overrides", "scheduled_charges", "discounts", "subscriptions",
                  "recurring_commits", "recurring_credits", "professional_services", "reseller_royalties")
ARCHIVE_KEYS = {"archive_commits": "commits", "archive_credits": "credits",
                "archive_scheduled_charges": "scheduled_charges"}
REMOVE_KEYS = {"remove_overrides": "overrides"}
UPDATE_ID_FIELD = {"commits": "commit_id", "credits": "credit_id", "scheduled_charges": "scheduled_charge_id",
                   "subscriptions": "subscription_id", "recurring_commits": "recurring_commit_id",
                   "recurring_credits": "recurring_credit_id"}
SCHEDULES = ("access_schedule", "invoice_schedule", "schedule")



@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Callable[[Emulator, dict[str, str], dict[str, Any]], dict[str, Any]]
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def route(method: str, template: str):
    def register(handler):
        pattern = re.compile("^" + re.sub(r"\{([a-z_]+)\}", r"(?P<\1>[^/]+)", template) + "$")
        ROUTES.append(Route(method, template, handler, pattern))
        return handler
    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    for r in ROUTES:
        found = r.pattern.match(path)
        if found and r.method == method:
            return r, found.groupdict()
    raise refused(404, f"no such endpoint: {method} {path}")


class Emulator:
    """The engine, over a repository of API objects (`store.emulator_repo.EmulatorRepo`)."""

    def __init__(self, repo, *, validate: Callable[[str, str, Any], None] | None = None,
                 new_id: Callable[[], str] = new_id):
        self.repo = repo
        self.validate = validate
        self.new_id = new_id
        self._seed_credit_types()

    def _seed_credit_types(self) -> None:
        # One row read by key: the whole index (a row per object) is read only when needed.
        if self.repo.get(USD_CREDIT_TYPE_ID) is None:
            self.repo.put("credit_type", {"id": USD_CREDIT_TYPE_ID, "name": CREDIT_TYPE_NAMES[USD_CREDIT_TYPE_ID],
                                          "is_currency": True})

    def add_credit_type(self, name: str, *, credit_type_id: str | None = None, is_currency: bool = False) -> dict[str, Any]:
        """Hold a credit type (pricing unit), as an administrator makes one in Metronome's UI: the
        API has no endpoint that creates them. A name already held is refused (409)."""
        if not name or not name.strip():
            raise refused(400, "a credit type needs a name", "name")
        for other in self.repo.list("credit_type"):
            if other["name"] == name:
                raise refused(409, f"a credit type named {name!r} already exists: {other['id']}", "name")
        if credit_type_id is not None:
            try:
                credit_type_id = str(uuid.UUID(credit_type_id))
            except ValueError:
                raise refused(400, f"a credit type id is a UUID, got {credit_type_id!r}", "id") from None
            if credit_type_id in self.repo.index():
                raise refused(409, f"the id {credit_type_id} is already taken", "id")
        credit_type = {"id": credit_type_id or self.new_id(), "name": name, "is_currency": is_currency}
        self.repo.put("credit_type", credit_type)
        return credit_type

    def credit_type_name(self, credit_type_id: str) -> str:
        found = self.repo.get(credit_type_id) if self.repo.index().get(credit_type_id, ("",))[0] == "credit_type" else None
        return found["name"] if found else CREDIT_TYPE_NAMES.get(credit_type_id, "")

    # --- the API -------------------------------------------------------------------------

    def execute(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r, params = match(method, path)
        if self.validate is not None:
            self.validate(method, path, body)
        body = copy.deepcopy(body)
        self._check_references(body, "")
        # A `uniqueness_key` (contract create and edit, customer commit and credit create) is claimed
        # by the handler (claim_uniqueness_key); ContractV2 keeps it, so a read finds the contract.
        return r.handler(self, params, body)

    def get(self, type_: str, object_id: str) -> dict[str, Any] | None:
        obj = self.repo.get(object_id)
        if obj is None or self.repo.index().get(object_id, ("",))[0] != type_:
            return None
        return obj

    def list(self, type_: str) -> list[dict[str, Any]]:
        return self.repo.list(type_)

    def flush(self) -> dict[str, int]:
        return self.repo.flush()

    # --- helpers for the handlers ---------------------------------------------------------

    def _check_references(self, value: Any, path: str) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                where = f"{path}.{name}" if path else name
                if name in REFERENCES and isinstance(item, str):
                    self.need(REFERENCES[name], item, where)
                elif name in REFERENCE_LISTS and isinstance(item, list):
                    for i, one in enumerate(item):
                        self.need(REFERENCE_LISTS[name], one, f"{where}[{i}]")
                elif name in CREDIT_TYPE_FIELDS and isinstance(item, str):
                    self.need("credit_type", item, where)
                else:
                    self._check_references(item, where)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._check_references(item, f"{path}[{i}]")

    def need(self, type_: str, object_id: str, field: str) -> dict[str, Any]:
        found = self.repo.index().get(object_id)
        if found is None or found[0] != type_:
            raise refused(404, f"{type_.replace('_', ' ')} not found: {object_id}", field)
        return self.repo.get(object_id)

    def editable(self, type_: str, object_id: str, field: str) -> dict[str, Any]:
        """A copy of the object to change; put() makes the change real."""
        return copy.deepcopy(self.need(type_, object_id, field))

    def put(self, type_: str, obj: dict[str, Any]) -> None:
        if type_ == "contract":
            self._name_credit_types(obj)
        self.repo.put(type_, obj)

    def _name_credit_types(self, value: Any) -> None:
        """`credit_type: {id, name}` as the API returns it: the name of the credit type held."""
        if isinstance(value, dict):
            for name, item in value.items():
                if name == "credit_type" and isinstance(item, dict) and "id" in item:
                    item["name"] = self.credit_type_name(item["id"])
                else:
                    self._name_credit_types(item)
        elif isinstance(value, list):
            for item in value:
                self._name_credit_types(item)

    def created(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = {"id": self.new_id(), **obj}
        self.repo.put(type_, obj)
        return {"data": {"id": obj["id"]}}


# --- shapes ------------------------------------------------------------------------------

def api_shape(value: Any) -> Any:
    """Request fields -> ContractV2 get fields: `product_id` -> `product: {id}`, `credit_type_id`
    -> `credit_type: {id, name}`."""
    if isinstance(value, list):
        return [api_shape(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name == "product_id" and isinstance(item, str):
            out["product"] = {"id": item}
        elif name == "credit_type_id" and isinstance(item, str):
            out["credit_type"] = {"id": item, "name": CREDIT_TYPE_NAMES.get(item, "")}
        else:
            out[name] = api_shape(item)
    return out


def _with_schedule_ids(item: dict[str, Any]) -> dict[str, Any]:
    for schedule in SCHEDULES:
        sched = item.get(schedule)
        if isinstance(sched, dict) and isinstance(sched.get("schedule_items"), list):
            sched["schedule_items"] = [{"id": schedule_item_id(item["id"], schedule, s), **s}
                                       for s in sched["schedule_items"]]
    return item


def new_item(body: dict[str, Any], item_id: str | None = None) -> dict[str, Any]:
    """A contract item as the API keeps it: its id, ContractV2 field shapes, schedule item ids."""
    item = {"id": item_id or new_id(), **{k: v for k, v in body.items() if k != "id"}}
    return api_shape(_with_schedule_ids(item))


def _find_item(contract: dict[str, Any], list_name: str, item_id: Any, field: str) -> dict[str, Any]:
    for item in contract.get(list_name, []):
        if item["id"] == item_id and item.get("archived_at") is None:
            return item
    raise refused(404, f"{list_name[:-1].replace('_', ' ')} not found on contract {contract['id']}: {item_id}", field)


# --- billable metrics ----------------------------------------------------------------------

@route("POST", "/v1/billable-metrics/create")
def create_billable_metric(emu: Emulator, _p, body):
    return emu.created("billable_metric", body)


@route("PUT", "/v1/billable-metrics/{billable_metric_id}")
def update_billable_metric(emu: Emulator, params, body):
    metric = emu.editable("billable_metric", params["billable_metric_id"], "billable_metric_id")
    metric.update({k: v for k, v in body.items() if k != "billable_metric_id"})
    emu.put("billable_metric", metric)
    return {"data": {"id": metric["id"]}}


def _archive(type_: str, field: str):
    def handler(emu: Emulator, _p, body):
        obj = emu.editable(type_, body[field], field)
        if obj.get("archived_at") is None:
            obj["archived_at"] = _now()
        emu.put(type_, obj)
        return {"data": {"id": obj["id"]}}
    return handler


def _now() -> str:
    from ..timeutil import format_timestamp, utc_now

    return format_timestamp(utc_now())


route("POST", "/v1/billable-metrics/archive")(_archive("billable_metric", "id"))


# --- products ----------------------------------------------------------------------------

@route("POST", "/v1/contract-pricing/products/create")
def create_product(emu: Emulator, _p, body):
    return emu.created("product", body)


@route("POST", "/v1/contract-pricing/products/update")
def update_product(emu: Emulator, _p, body):
    product = emu.editable("product", body["product_id"], "product_id")
    fields = {k: v for k, v in body.items() if k != "product_id"}
    product.setdefault("updates", []).append(fields)
    for name, value in fields.items():
        if name == "starting_at":
            continue
        if value is None:
            product.pop(name, None)
        else:
            product[name] = value
    emu.put("product", product)
    return {"data": {"id": product["id"]}}


route("POST", "/v1/contract-pricing/products/archive")(_archive("product", "product_id"))


# --- rate cards --------------------------------------------------------------------------

@route("POST", "/v1/contract-pricing/rate-cards/create")
def create_rate_card(emu: Emulator, _p, body):
    return emu.created("rate_card", {**body, "rates": []})


@route("POST", "/v1/contract-pricing/rate-cards/update")
def update_rate_card(emu: Emulator, _p, body):
    card = emu.editable("rate_card", body["rate_card_id"], "rate_card_id")
    for name, value in body.items():
        if name == "rate_card_id":
            continue
        if value is None:
            card.pop(name, None)
        else:
            card[name] = value
    emu.put("rate_card", card)
    return {"data": {"id": card["id"]}}


@route("POST", "/v1/contract-pricing/rate-cards/addRates")
def add_rates(emu: Emulator, _p, body):
    card = emu.editable("rate_card", body["rate_card_id"], "rate_card_id")
    rates = card.setdefault("rates", [])
    for rate in body["rates"]:
        # A rate that starts later ends the earlier open rate of the same product and pricing group.
        for old in rates:
            if _same_rate_line(old, rate) and old.get("ending_before") is None and old["starting_at"] < rate["starting_at"]:
                old["ending_before"] = rate["starting_at"]
        rates.append(rate)
    emu.put("rate_card", card)
    return {"data": {"id": card["id"]}}


def _same_rate_line(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("product_id", "pricing_group_values", "billing_frequency"))


route("POST", "/v1/contract-pricing/rate-cards/archive")(_archive("rate_card", "id"))


# --- customers ---------------------------------------------------------------------------

CONFIGS = "customer_billing_provider_configurations"


@route("POST", "/v1/customers")
def create_customer(emu: Emulator, _p, body):
    aliases = body.get("ingest_aliases") or []
    _check_aliases_free(emu, aliases, None)
    for name in (CONFIGS, "customer_revenue_system_configurations"):
        if name in body:
            body[name] = [{"id": emu.new_id(), **c} for c in body[name]]
    return emu.created("customer", body)


def _check_aliases_free(emu: Emulator, aliases: list[str], customer_id: str | None) -> None:
    if not aliases:
        return
    wanted = set(aliases)
    # A repository that indexes aliases (the served emulator's) names the few customers to look
    # at; otherwise every customer is.
    using = getattr(emu.repo, "customers_using", None)
    for other in (using(wanted) if using is not None else emu.list("customer")):
        if other["id"] != customer_id and other.get("archived_at") is None:
            taken = wanted & set(other.get("ingest_aliases") or [])
            if taken:
                raise refused(409, f"ingest alias {sorted(taken)[0]} is already used by customer {other['id']}",
                               "ingest_aliases")


@route("POST", "/v1/customers/{customer_id}/setName")
def set_customer_name(emu: Emulator, params, body):
    customer = emu.editable("customer", params["customer_id"], "customer_id")
    customer["name"] = body["name"]
    emu.put("customer", customer)
    return {"data": customer}


@route("POST", "/v1/customers/{customer_id}/setIngestAliases")
def set_ingest_aliases(emu: Emulator, params, body):
    customer = emu.editable("customer", params["customer_id"], "customer_id")
    customer["ingest_aliases"] = list(body["ingest_aliases"])
    emu.put("customer", customer)
    return {}


@route("POST", "/v1/setCustomerBillingProviderConfigurations")
def set_billing_provider_configurations(emu: Emulator, _p, body):
    out = []
    for i, entry in enumerate(body["data"]):
        customer = emu.editable("customer", entry["customer_id"], f"data[{i}].customer_id")
        config = {"id": emu.new_id(), **{k: v for k, v in entry.items() if k != "customer_id"}}
        customer.setdefault(CONFIGS, []).append(config)
        emu.put("customer", customer)
        out.append({"id": config["id"], "customer_id": customer["id"]})
    return {"data": out}


@route("POST", "/v1/archiveCustomerBillingProviderConfigurations")
def archive_billing_provider_configurations(emu: Emulator, _p, body):
    customer = emu.editable("customer", body["customer_id"], "customer_id")
    configs = {c["id"]: c for c in customer.get(CONFIGS, [])}
    for i, config_id in enumerate(body["customer_billing_provider_configuration_ids"]):
        if config_id not in configs:
            raise refused(404, f"billing provider configuration not found: {config_id}",
                           f"customer_billing_provider_configuration_ids[{i}]")
        configs[config_id].setdefault("archived_at", _now())
    emu.put("customer", customer)
    return {}


route("POST", "/v1/customers/archive")(_archive("customer", "id"))


def _customer_balance(list_name: str, endpoint: str):
    """customerCommits/create, customerCredits/create: a Commit/Credit object (the list endpoints'
    shape: `product: {id}`, `invoice_contract: {id}`), kept with the customer under `commits` /
    `credits`, where the customer's reader finds it (the API lists them per customer)."""
    def handler(emu: Emulator, _p, body):
        customer = emu.editable("customer", body["customer_id"], "customer_id")
        for field in ("invoice_contract_id",):
            if field in body:
                contract = emu.need("contract", body[field], field)
                if contract.get("customer_id") != customer["id"]:
                    raise refused(400, f"contract {contract['id']} is not a contract of customer {customer['id']}", field)
        for i, contract_id in enumerate(body.get("applicable_contract_ids") or []):
            if emu.need("contract", contract_id, f"applicable_contract_ids[{i}]").get("customer_id") != customer["id"]:
                raise refused(400, f"contract {contract_id} is not a contract of customer {customer['id']}",
                              f"applicable_contract_ids[{i}]")
        claim_uniqueness_key(emu, f"contracts/{endpoint}", body)
        fields = {k: v for k, v in body.items() if k not in ("customer_id", "uniqueness_key")}
        if "invoice_contract_id" in fields:
            fields["invoice_contract"] = {"id": fields.pop("invoice_contract_id")}
        item = new_item(fields, emu.new_id())
        customer.setdefault(list_name, []).append(item)
        emu.put("customer", customer)
        return {"data": {"id": item["id"]}}
    return handler


route("POST", "/v1/contracts/customerCommits/create")(_customer_balance("commits", "customerCommits/create"))
route("POST", "/v1/contracts/customerCredits/create")(_customer_balance("credits", "customerCredits/create"))


# --- custom fields -----------------------------------------------------------------------

ENTITY_TYPES = {"customer": "customer", "contract": "contract", "product": "product", "rate_card": "rate_card",
                "billable_metric": "billable_metric"}


def _entity(emu: Emulator, body) -> tuple[str, dict[str, Any]]:
    type_ = ENTITY_TYPES.get(body["entity"])
    if type_ is None:
        raise refused(400, f"custom fields on {body['entity']} are not kept by this emulator", "entity")
    return type_, emu.editable(type_, body["entity_id"], "entity_id")


@route("POST", "/v1/customFields/setValues")
def set_custom_field_values(emu: Emulator, _p, body):
    type_, obj = _entity(emu, body)
    obj.setdefault("custom_fields", {}).update(body["custom_fields"])
    emu.put(type_, obj)
    return {}


@route("POST", "/v1/customFields/deleteValues")
def delete_custom_field_values(emu: Emulator, _p, body):
    type_, obj = _entity(emu, body)
    for key in body["keys"]:
        obj.get("custom_fields", {}).pop(key, None)
    emu.put(type_, obj)
    return {}


# --- contracts ---------------------------------------------------------------------------

def claim_uniqueness_key(emu: Emulator, endpoint: str, body: dict[str, Any]) -> None:
    """A request's `uniqueness_key` is accepted once per endpoint and customer: the API answers
    a second request with the same key 409 and does nothing (a client whose response was lost
    learns so that its first request was done). Used keys are kept as their own records."""
    key = body.get("uniqueness_key")
    if key is None:
        return
    record = f"uniqueness-key:{endpoint}:{body['customer_id']}:{key}"
    if record in emu.repo.index():
        raise refused(409, f"a request with this uniqueness_key was already made: {key}", "uniqueness_key")
    emu.put("uniqueness_key", {"id": record, "endpoint": endpoint, "customer_id": body["customer_id"], "key": key})


@route("POST", "/v1/contracts/create")
def create_contract(emu: Emulator, _p, body):
    claim_uniqueness_key(emu, "contracts/create", body)
    contract: dict[str, Any] = {"id": emu.new_id()}
    temporary: dict[str, str] = {}
    for name, value in body.items():
        if name in CONTRACT_LISTS:
            items = []
            for entry in value:
                item = new_item(entry, emu.new_id())
                if name == "subscriptions" and entry.get("temporary_id"):
                    temporary[entry["temporary_id"]] = item["id"]
                items.append(item)
            contract[name] = items
        elif name == "usage_filter":
            contract["usage_filter"] = {"initial": value, "updates": []}
        elif name == "billing_provider_configuration":
            contract[name] = _contract_billing_provider(emu, body, value)
        else:
            contract[name] = api_shape(value)
    link_subscriptions(contract, temporary)
    _check_subscription_links(contract)
    old = _transition(emu, contract, body.get("transition"))
    if old is not None:
        emu.put("contract", old)
    emu.put("contract", contract)
    return {"data": {"id": contract["id"]}}


def _transition(emu: Emulator, contract: dict[str, Any], transition: dict[str, Any] | None) -> dict[str, Any] | None:
    """A SUPERSEDE or RENEWAL transition ends the old contract (same customer, not archived, started
    before) at the new one's start, unless it ends earlier, and both record the transition
    (ContractV2 `transitions`). Returns the changed old contract."""
    if not transition:
        return None
    field = "transition.from_contract_id"
    old = emu.editable("contract", transition["from_contract_id"], field)
    if old.get("customer_id") != contract["customer_id"] or old.get("archived_at") is not None:
        raise refused(400, f"contract {old['id']} is not an active contract of customer {contract['customer_id']}", field)
    if _instant(contract["starting_at"]) <= _instant(old["starting_at"]):
        raise refused(400, f"a transition's new contract must start after the contract it replaces "
                           f"({old['starting_at']})", "starting_at")
    if old.get("ending_before") is None or _instant(contract["starting_at"]) < _instant(old["ending_before"]):
        old["ending_before"] = contract["starting_at"]
    entry = {"type": transition["type"].upper(), "from_contract_id": old["id"], "to_contract_id": contract["id"]}
    old.setdefault("transitions", []).append(entry)
    contract.setdefault("transitions", []).append(dict(entry))
    return old


def _instant(text: str):
    from ..timeutil import parse_timestamp

    return parse_timestamp(text)


def _contract_billing_provider(emu: Emulator, body, value: dict[str, Any]) -> dict[str, Any]:
    config_id = value.get("billing_provider_configuration_id")
    if config_id is not None:
        customer = emu.need("customer", body["customer_id"], "customer_id")
        if not any(c["id"] == config_id for c in customer.get(CONFIGS, [])):
            raise refused(404, f"billing provider configuration not found on the customer: {config_id}",
                           "billing_provider_configuration.billing_provider_configuration_id")
    return dict(value)


def link_subscriptions(contract: dict[str, Any], temporary: dict[str, str]) -> None:
    """Recurring commits and credits name a subscription created with them by its temporary_id."""
    for name in ("recurring_commits", "recurring_credits"):
        for item in contract.get(name, []):
            config = item.get("subscription_config")
            if config and config.get("subscription_id") in temporary:
                config["subscription_id"] = temporary[config["subscription_id"]]


def _check_subscription_links(contract: dict[str, Any]) -> None:
    """A subscription_config names a subscription of the contract (by id, or by the temporary_id of
    one created in the same request): anything else is refused, as the API does."""
    ids = {s["id"] for s in contract.get("subscriptions", [])}
    for name in ("recurring_commits", "recurring_credits"):
        for i, item in enumerate(contract.get(name, [])):
            config = item.get("subscription_config")
            if config and config.get("subscription_id") not in ids:
                raise refused(404, f"subscription not found on contract {contract['id']}: {config.get('subscription_id')}",
                              f"{name}[{i}].subscription_config.subscription_id")


@route("POST", "/v2/contracts/edit")
def edit_contract(emu: Emulator, _p, body):
    contract = emu.editable("contract", body["contract_id"], "contract_id")
    if contract.get("customer_id") != body["customer_id"]:
        raise refused(404, f"contract {body['contract_id']} not found for customer {body['customer_id']}", "contract_id")
    claim_uniqueness_key(emu, "contracts/edit", body)
    temporary: dict[str, str] = {}
    for key, value in body.items():
        if key in ("customer_id", "contract_id", "uniqueness_key", "allow_contract_ending_before_finalized_invoice"):
            continue
        if key.startswith("add_") and key[4:] in CONTRACT_LISTS:
            name = key[4:]
            for entry in value:
                item = new_item(entry, emu.new_id())
                if name == "subscriptions" and entry.get("temporary_id"):
                    temporary[entry["temporary_id"]] = item["id"]
                contract.setdefault(name, []).append(item)
        elif key in ARCHIVE_KEYS:
            for i, entry in enumerate(value):
                _find_item(contract, ARCHIVE_KEYS[key], entry["id"], f"{key}[{i}].id")["archived_at"] = _now()
        elif key in REMOVE_KEYS:
            name = REMOVE_KEYS[key]
            for i, entry in enumerate(value):
                _find_item(contract, name, entry["id"], f"{key}[{i}].id")
                contract[name] = [o for o in contract[name] if o["id"] != entry["id"]]
        elif key.startswith("update_") and key[7:] in UPDATE_ID_FIELD:
            name = key[7:]
            for i, entry in enumerate(value):
                item = _find_item(contract, name, entry[UPDATE_ID_FIELD[name]], f"{key}[{i}].{UPDATE_ID_FIELD[name]}")
                _update_item(item, name, entry)
        else:
            EDIT_FIELDS.get(key, _refuse_edit_key)(emu, contract, key, value, body)
    # A recurring credit added now may name a subscription added in the same edit.
    link_subscriptions(contract, temporary)
    _check_subscription_links(contract)
    emu.put("contract", contract)
    return {"data": {"id": emu.new_id()}}


def _update_item(item: dict[str, Any], list_name: str, entry: dict[str, Any]) -> None:
    for field, value in entry.items():
        if field == UPDATE_ID_FIELD[list_name]:
            continue
        if isinstance(value, dict) and ({"add_schedule_items", "remove_schedule_items", "update_schedule_items"} & set(value)):
            schedule = "schedule" if list_name == "scheduled_charges" else field
            _update_schedule(item, schedule, value)
        elif field == "quantity_updates":
            item.setdefault("quantity_updates", []).extend(value)
        elif field == "seat_updates":
            seats = item.setdefault("seat_updates", {})
            for kind, entries in value.items():
                seats.setdefault(kind, []).extend(entries)
        elif field == "proration_rounding" and list_name == "subscriptions":
            item.setdefault("proration", {})["rounding"] = value
        elif field == "quantity_management_mode_update":
            item.update(value)
        elif field in ("access_amount", "invoice_amount") and isinstance(value, dict):
            item.setdefault(field, {}).update(value)
        elif field == "product_id":
            item["product"] = {"id": value}
        elif value is None:
            item.pop(field, None)
        else:
            item[field] = api_shape(value)


def _update_schedule(item: dict[str, Any], schedule: str, delta: dict[str, Any]) -> None:
    sched = item.setdefault(schedule, {})
    items = sched.setdefault("schedule_items", [])
    for i, removed in enumerate(delta.get("remove_schedule_items", [])):
        if not any(s["id"] == removed["id"] for s in items):
            raise refused(404, f"schedule item not found: {removed['id']}", f"{schedule}.remove_schedule_items[{i}].id")
        items[:] = [s for s in items if s["id"] != removed["id"]]
    for update in delta.get("update_schedule_items", []):
        for s in items:
            if s["id"] == update["id"]:
                s.update(update)
    for added in delta.get("add_schedule_items", []):
        items.append({"id": schedule_item_id(item["id"], schedule, added), **added})


def _set_field(name: str):
    def handler(emu, contract, key, value, body):
        if value is None:
            contract.pop(name, None)
        else:
            contract[name] = value
    return handler


def _threshold(name: str):
    def handler(emu, contract, key, value, body):
        if key.startswith("add_"):
            contract[name] = value
            return
        threshold = contract.setdefault(name, {})
        for field, given in value.items():  # a partial update; null clears a field
            if given is None:
                threshold.pop(field, None)
            else:
                threshold[field] = given
    return handler


def _billing_provider_update(emu, contract, key, value, body):
    contract["billing_provider_configuration"] = _contract_billing_provider(
        emu, body, value["billing_provider_configuration"])


def _refuse_edit_key(emu, contract, key, value, body):
    raise refused(400, f"{key} is not supported by this emulator", key)


EDIT_FIELDS: dict[str, Callable[..., None]] = {
    "update_contract_name": _set_field("name"),
    "update_contract_end_date": _set_field("ending_before"),
    "update_net_payment_terms_days": _set_field("net_payment_terms_days"),
    "add_billing_provider_configuration_update": _billing_provider_update,
    "add_spend_threshold_configuration": _threshold("spend_threshold_configuration"),
    "update_spend_threshold_configuration": _threshold("spend_threshold_configuration"),
    "add_prepaid_balance_threshold_configuration": _threshold("prepaid_balance_threshold_configuration"),
    "update_prepaid_balance_threshold_configuration": _threshold("prepaid_balance_threshold_configuration"),
}


@route("POST", "/v1/contracts/setUsageFilter")
def set_usage_filter(emu: Emulator, _p, body):
    contract = emu.editable("contract", body["contract_id"], "contract_id")
    history = contract.setdefault("usage_filter", {"updates": []})
    history.setdefault("updates", []).append(
        {k: body[k] for k in ("group_key", "group_values", "starting_at") if k in body})
    emu.put("contract", contract)
    return {}


@route("POST", "/v1/contracts/archive")
def archive_contract(emu: Emulator, _p, body):
    contract = emu.editable("contract", body["contract_id"], "contract_id")
    contract.setdefault("archived_at", _now())
    emu.put("contract", contract)
    return {"data": {"id": contract["id"]}}
