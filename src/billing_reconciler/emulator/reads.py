"""The emulator's read endpoints: list and get, over one published Mirror, in the API's shapes.

Each handler takes (mirror, path params, query, body) and returns the response body, or raises
RequestRefused. Lists the API paginates take `limit` (1-100, default 100 here) and `next_page`,
an opaque cursor (the last id of the previous page); their order is the objects' id order.
"""

from __future__ import annotations

import base64
import bisect
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from . import api_shapes
from .refusals import RequestRefused, refused
from .served_state import Mirror

Query = Mapping[str, list[str]]
Handler = Callable[[Mirror, dict[str, str], Query, dict[str, Any]], dict[str, Any]]

READS: dict[tuple[str, str], Handler] = {}
DEFAULT_LIMIT = 100


def read(method: str, template: str):
    def register(handler: Handler) -> Handler:
        READS[(method, template)] = handler
        return handler
    return register


# --- query parameters ------------------------------------------------------------------------------

def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _flag(query: Query, name: str) -> bool:
    value = _one(query, name)
    if value is None:
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise RequestRefused(400, name, f"must be true or false, not {value!r}")


def _list_param(query: Query, name: str) -> list[str] | None:
    values = query.get(name)
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _limit(query: Query) -> int:
    value = _one(query, "limit")
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise RequestRefused(400, "limit", f"must be an integer, not {value!r}") from None
    if not 1 <= limit <= 100:
        raise RequestRefused(400, "limit", f"must be between 1 and 100, not {limit}")
    return limit


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("after:"):
        raise RequestRefused(400, "next_page", "is not a cursor this API returned; pass next_page from the previous page")
    return text[len("after:"):]


def page(items: list[dict[str, Any]], query: Query,
         shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """One page of items (in id order) and the cursor of the next one (None: the last page);
    `shape` turns each item of the page (only those) into its API form."""
    limit = _limit(query)
    cursor = _one(query, "next_page")
    start = 0
    if cursor:
        after = decode_cursor(cursor)
        start = bisect.bisect_right(items, after, key=lambda item: item["id"])
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return {"data": [shape(item) for item in chunk] if shape else chunk, "next_page": encode_cursor(chunk[-1]["id"]) if more and chunk else None}


def _need(mirror: Mirror, type_: str, object_id: Any, field: str) -> dict[str, Any]:
    found = mirror.get(type_, object_id) if isinstance(object_id, str) else None
    if found is None:
        raise refused(404, f"{type_.replace('_', ' ')} not found: {object_id}", field)
    return found


def _archived(obj: dict[str, Any]) -> bool:
    return obj.get("archived_at") is not None


# --- customers -----------------------------------------------------------------------------------

@read("GET", "/v1/customers")
def list_customers(mirror: Mirror, _p, query: Query, _b) -> dict[str, Any]:
    only_archived = _flag(query, "only_archived")
    alias = _one(query, "ingest_alias")
    ids = _list_param(query, "customer_ids")
    wanted = set(ids) if ids is not None else None
    found = [c for c in mirror.list("customer")
             if _archived(c) == only_archived
             and (alias is None or alias in (c.get("ingest_aliases") or []))
             and (wanted is None or c["id"] in wanted)]
    return page(found, query, api_shapes.customer)


@read("GET", "/v1/customers/{customer_id}")
def get_customer(mirror: Mirror, params, _q, _b) -> dict[str, Any]:
    return {"data": api_shapes.customer(_need(mirror, "customer", params["customer_id"], "customer_id"))}


@read("POST", "/v1/getCustomerBillingProviderConfigurations")
def get_billing_provider_configurations(mirror: Mirror, _p, _q, body) -> dict[str, Any]:
    customer = _need(mirror, "customer", body["customer_id"], "customer_id")
    return {"data": api_shapes.billing_provider_configurations(customer, bool(body.get("include_archived")))}


@read("POST", "/v1/contracts/customerCommits/list")
def list_customer_commits(mirror: Mirror, _p, query: Query, body) -> dict[str, Any]:
    customer = _need(mirror, "customer", body["customer_id"], "customer_id")
    return page(api_shapes.customer_balances(customer, "commits"), query)


@read("POST", "/v1/contracts/customerCredits/list")
def list_customer_credits(mirror: Mirror, _p, query: Query, body) -> dict[str, Any]:
    customer = _need(mirror, "customer", body["customer_id"], "customer_id")
    return page(api_shapes.customer_balances(customer, "credits"), query)


# --- billable metrics ----------------------------------------------------------------------------

@read("GET", "/v1/billable-metrics")
def list_billable_metrics(mirror: Mirror, _p, query: Query, _b) -> dict[str, Any]:
    include_archived = _flag(query, "include_archived")
    return page([m for m in mirror.list("billable_metric") if include_archived or not _archived(m)], query)


@read("GET", "/v1/billable-metrics/{billable_metric_id}")
def get_billable_metric(mirror: Mirror, params, _q, _b) -> dict[str, Any]:
    return {"data": _need(mirror, "billable_metric", params["billable_metric_id"], "billable_metric_id")}


# --- products ------------------------------------------------------------------------------------

ARCHIVE_FILTERS = {"NOT_ARCHIVED": (False,), "ARCHIVED": (True,), "ALL": (False, True)}


@read("POST", "/v1/contract-pricing/products/list")
def list_products(mirror: Mirror, _p, query: Query, body) -> dict[str, Any]:
    wanted = ARCHIVE_FILTERS[body.get("archive_filter") or "NOT_ARCHIVED"]
    return page([p for p in mirror.list("product") if _archived(p) in wanted], query, api_shapes.product)


@read("POST", "/v1/contract-pricing/products/get")
def get_product(mirror: Mirror, _p, _q, body) -> dict[str, Any]:
    return {"data": api_shapes.product(_need(mirror, "product", body["id"], "id"))}


# --- rate cards ----------------------------------------------------------------------------------

@read("POST", "/v1/contract-pricing/rate-cards/list")
def list_rate_cards(mirror: Mirror, _p, query: Query, _b) -> dict[str, Any]:
    # The API lists archived rate cards too (it has no filter); they carry archived_at.
    return page(mirror.list("rate_card"), query, lambda c: api_shapes.rate_card(c, mirror.credit_type_names))


@read("POST", "/v1/contract-pricing/rate-cards/get")
def get_rate_card(mirror: Mirror, _p, _q, body) -> dict[str, Any]:
    card = _need(mirror, "rate_card", body["id"], "id")
    return {"data": api_shapes.rate_card(card, mirror.credit_type_names)}


def _rates(mirror: Mirror, body, keep: Callable[[dict[str, Any]], bool], query: Query) -> dict[str, Any]:
    card = _need(mirror, "rate_card", body["rate_card_id"], "rate_card_id")
    selectors = body.get("selectors") or []
    rates = [r for r in card.get("rates") or [] if keep(r) and _selected(r, selectors)]
    products = {r["product_id"]: mirror.get("product", r["product_id"]) or {} for r in rates}
    entries = [api_shapes.rate_schedule(r, products, mirror.credit_type_names) for r in rates]
    # Rates have no id: pages are cut by position (the cursor is the index of the next entry).
    cursor = _one(query, "next_page")
    position = decode_cursor(cursor) if cursor else "0"
    if not position.isdigit():
        raise RequestRefused(400, "next_page", "is not a cursor this API returned; pass next_page from the previous page")
    start = int(position)
    limit = _limit(query)
    chunk = entries[start:start + limit]
    more = start + limit < len(entries)
    return {"data": chunk, "next_page": encode_cursor(str(start + limit)) if more else None}


def _selected(rate: dict[str, Any], selectors: list[dict[str, Any]]) -> bool:
    if not selectors:
        return True
    for selector in selectors:
        if "product_id" in selector and selector["product_id"] != rate["product_id"]:
            continue
        groups = rate.get("pricing_group_values") or {}
        if "pricing_group_values" in selector and selector["pricing_group_values"] != groups:
            continue
        partial = selector.get("partial_pricing_group_values") or {}
        if any(groups.get(k) != v for k, v in partial.items()):
            continue
        if "billing_frequency" in selector and selector["billing_frequency"].upper() != \
                str(rate.get("billing_frequency") or "").upper():
            continue
        return True
    return False


@read("POST", "/v1/contract-pricing/rate-cards/getRates")
def get_rates(mirror: Mirror, _p, query: Query, body) -> dict[str, Any]:
    return _rates(mirror, body, lambda r: api_shapes.rate_in_force(r, body["at"]), query)


@read("POST", "/v1/contract-pricing/rate-cards/getRateSchedule")
def get_rate_schedule(mirror: Mirror, _p, query: Query, body) -> dict[str, Any]:
    return _rates(mirror, body, lambda r: api_shapes.rate_overlaps(r, body["starting_at"], body.get("ending_before")),
                  query)


# --- credit types --------------------------------------------------------------------------------

@read("GET", "/v1/credit-types/list")
def list_credit_types(mirror: Mirror, _p, query: Query, _b) -> dict[str, Any]:
    return page(mirror.list("credit_type"), query)


# --- contracts -----------------------------------------------------------------------------------

@read("POST", "/v2/contracts/list")
def list_contracts(mirror: Mirror, _p, _q, body) -> dict[str, Any]:
    _need(mirror, "customer", body["customer_id"], "customer_id")
    include_archived = bool(body.get("include_archived"))
    return {"data": [c for c in mirror.contracts_by_customer.get(body["customer_id"], [])
                     if include_archived or not _archived(c)]}


@read("POST", "/v2/contracts/get")
def get_contract(mirror: Mirror, _p, _q, body) -> dict[str, Any]:
    contract = _need(mirror, "contract", body["contract_id"], "contract_id")
    if contract.get("customer_id") != body["customer_id"]:
        raise refused(404, f"contract {body['contract_id']} not found for customer {body['customer_id']}", "contract_id")
    return {"data": contract}
