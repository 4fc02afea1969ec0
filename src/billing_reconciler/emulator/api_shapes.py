"""The emulator's stored objects <-> the shapes the API's read endpoints return.

The emulator keeps each object in one document (`engine.py`: what the readers in plan/readers.py
read). The API spreads some of them over several endpoints and nests fields differently:

- customer: `GET /v1/customers/{id}` is a CustomerDetail (`external_id`, `customer_config`, no
  billing provider configurations); those come from `POST /v1/getCustomerBillingProviderConfigurations`.
- product: a ProductListItem, `{id, type, initial, current, updates, archived_at}`; the stored
  product is the flat current state.
- rate card: a RateCard (`fiat_credit_type: {id, name}`, conversions with `custom_credit_type`
  and the ratio as a string) without its rates, which come from `getRates`/`getRateSchedule` as
  RateSchedule entries (`rate: {rate_type, price, credit_type: {id, name}, ...}`).
- customer-level commits and credits: kept with the customer (`commits`, `credits`), listed by
  `POST /v1/contracts/customerCommits/list` and `customerCredits/list`.
- billable metric, contract (ContractV2): as stored.

`to_api(type, stored)` and the helpers below are what `emulator serve` answers;
`stored_shape(type, api, ...)` is the inverse, for a client of the HTTP API (the metronome-sdk
backend) to rebuild the object the readers read from what the read endpoints return. The two are
tested as inverses over every kind (tests/emulator/test_api_shapes.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_ID

CUSTOMER_CONFIGS = "customer_billing_provider_configurations"
CUSTOMER_REVENUE_CONFIGS = "customer_revenue_system_configurations"
CUSTOMER_BALANCES = ("commits", "credits")  # customer-level, from the customerCommits/customerCredits lists
_CUSTOMER_API_ONLY = ("external_id", "customer_config", "created_at", "updated_at", "current_billable_status")
_PRODUCT_TOP = ("id", "type", "archived_at", "custom_fields")
_PRODUCT_STATE_API_ONLY = ("created_at", "created_by")
# RatePayload fields that the API returns inside RateSchedule.rate (the rest stay beside it).
_RATE_FIELDS = ("rate_type", "price", "quantity", "is_prorated", "tiers", "custom_rate", "minimum_config")


def credit_type(credit_type_id: str, names: dict[str, str]) -> dict[str, str]:
    return {"id": credit_type_id, "name": names.get(credit_type_id, "")}


# --- customers -----------------------------------------------------------------------------------

def customer(stored: dict[str, Any]) -> dict[str, Any]:
    """CustomerDetail: the stored customer without its configuration lists, with the fields the
    API always returns (`external_id`: the first ingest alias, else the id)."""
    out = {k: v for k, v in stored.items() if k not in (CUSTOMER_CONFIGS, CUSTOMER_REVENUE_CONFIGS, *CUSTOMER_BALANCES)}
    aliases = out.setdefault("ingest_aliases", [])
    out.setdefault("custom_fields", {})
    out["external_id"] = aliases[0] if aliases else stored["id"]
    out["customer_config"] = {"salesforce_account_id": None}
    return out


def billing_provider_configurations(stored: dict[str, Any], include_archived: bool) -> list[dict[str, Any]]:
    """CustomerBillingProviderConfiguration entries of a customer."""
    return [{**config, "customer_id": stored["id"], "archived_at": config.get("archived_at")}
            for config in stored.get(CUSTOMER_CONFIGS) or []
            if include_archived or config.get("archived_at") is None]


# --- products ------------------------------------------------------------------------------------

def product(stored: dict[str, Any]) -> dict[str, Any]:
    """ProductListItem. The emulator applies updates at once, so `current` is the stored state;
    it keeps no separate initial state, so `initial` is the current one too."""
    state = {k: v for k, v in stored.items() if k not in (*_PRODUCT_TOP, "updates")}
    out = {k: stored[k] for k in _PRODUCT_TOP if k in stored}
    out.update(initial=state, current=dict(state), updates=list(stored.get("updates") or []))
    return out


# --- rate cards ----------------------------------------------------------------------------------

def rate_card(stored: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """RateCard, without its rates (getRates / getRateSchedule give those)."""
    out: dict[str, Any] = {}
    for name, value in stored.items():
        if name == "rates":
            continue
        if name == "fiat_credit_type_id":
            out["fiat_credit_type"] = credit_type(value, names)
        elif name == "credit_type_conversions":
            out[name] = [{"custom_credit_type": credit_type(c["custom_credit_type_id"], names),
                          "fiat_per_custom_credit": _number_text(c["fiat_per_custom_credit"])} for c in value]
        else:
            out[name] = value
    out.setdefault("fiat_credit_type", credit_type(USD_CREDIT_TYPE_ID, names))
    return out


def _number_text(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def rate_schedule(rate: dict[str, Any], products: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """A stored addRates entry as a RateSchedule entry."""
    product_ = products.get(rate["product_id"], {})
    out: dict[str, Any] = {"product_id": rate["product_id"], "product_name": product_.get("name", ""),
                           "product_tags": product_.get("tags") or [],
                           "product_custom_fields": product_.get("custom_fields") or {}}
    inner: dict[str, Any] = {}
    for name, value in rate.items():
        if name == "product_id":
            continue
        if name in _RATE_FIELDS:
            inner[name] = value
        elif name == "credit_type_id":
            inner["credit_type"] = credit_type(value, names)
        else:
            out[name] = value
    inner.setdefault("credit_type", credit_type(USD_CREDIT_TYPE_ID, names))
    out["rate"] = inner
    return out


def rate_in_force(rate: dict[str, Any], at: str) -> bool:
    """The rate applies at `at` (RFC 3339 text, compared as instants)."""
    from ..timeutil import parse_timestamp

    moment = parse_timestamp(at)
    if parse_timestamp(rate["starting_at"]) > moment:
        return False
    return rate.get("ending_before") is None or parse_timestamp(rate["ending_before"]) > moment


def rate_overlaps(rate: dict[str, Any], starting_at: str, ending_before: str | None) -> bool:
    from ..timeutil import parse_timestamp

    if rate.get("ending_before") is not None and parse_timestamp(rate["ending_before"]) <= parse_timestamp(starting_at):
        return False
    return ending_before is None or parse_timestamp(rate["starting_at"]) < parse_timestamp(ending_before)


# --- the inverse: what a client of the HTTP API rebuilds -----------------------------------------

def customer_balances(stored: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Commit/Credit entries of a customer's customer-level commits or credits."""
    return [{**item, "customer_id": stored["id"]} for item in stored.get(name) or []]


def stored_shape(type_: str, api: dict[str, Any], *, configurations: list[dict[str, Any]] | None = None,
                 rates: list[dict[str, Any]] | None = None,
                 balances: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The emulator's (and the readers') shape of an object read from the API: `api` is the get
    endpoint's `data`; a customer also takes its billing provider configurations (include
    archived), a rate card its rates (getRateSchedule from the beginning of time).

    The API shows the default credit type (USD cents) where none was set: it is left out here,
    so a rate card or rate that names USD explicitly reads back as one that names none (specform
    already compares rates' `credit_type_id` that way; `fiat_credit_type_id` is not, see the
    serve helper's report)."""
    if type_ == "customer":
        out = {k: v for k, v in api.items() if k not in _CUSTOMER_API_ONLY}
        if configurations:
            out[CUSTOMER_CONFIGS] = [_stored_configuration(c) for c in configurations]
        for name, items in (balances or {}).items():
            if items:
                out[name] = [{k: v for k, v in item.items() if k != "customer_id"} for item in items]
        return out
    if type_ == "product":
        out = {k: api[k] for k in _PRODUCT_TOP if k in api}
        out.update({k: v for k, v in (api.get("current") or {}).items() if k not in _PRODUCT_STATE_API_ONLY})
        updates = [{k: v for k, v in u.items() if k not in _PRODUCT_STATE_API_ONLY} for u in api.get("updates") or []]
        if updates:
            out["updates"] = updates
        return out
    if type_ == "rate_card":
        out = {}
        for name, value in api.items():
            if name in ("created_at", "created_by"):
                continue
            if name == "fiat_credit_type":
                if value["id"] != USD_CREDIT_TYPE_ID:  # the API's default, shown when none was set
                    out["fiat_credit_type_id"] = value["id"]
            elif name == "credit_type_conversions":
                out[name] = [{"custom_credit_type_id": c["custom_credit_type"]["id"],
                              "fiat_per_custom_credit": Decimal(str(c["fiat_per_custom_credit"]))} for c in value]
            else:
                out[name] = value
        out["rates"] = [_stored_rate(r) for r in rates or []]
        return out
    return dict(api)


def _stored_configuration(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items()
            if k != "customer_id" and not (k == "archived_at" and v is None)}


def _stored_rate(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"product_id": entry["product_id"]}
    for name, value in entry.items():
        if name in ("product_id", "product_name", "product_tags", "product_custom_fields"):
            continue
        if name == "rate":
            for inner, given in value.items():
                if inner == "credit_type":
                    if given["id"] != USD_CREDIT_TYPE_ID:  # the default, as above
                        out["credit_type_id"] = given["id"]
                else:
                    out[inner] = given
        else:
            out[name] = value
    return out
