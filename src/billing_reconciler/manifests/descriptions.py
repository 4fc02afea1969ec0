"""Descriptions of manifest fields for the JSON Schemas (`schemas`), so editors show them on hover.

A field's description is the OpenAPI document's description of the API field it becomes (the
bundled emulator/metronome-openapi.json), found by walking each kind's spec beside the request
bodies of the endpoints that take it (SOURCES): the manifest's `product` is the API's `product_id`,
a contract's `commits` are `commits` on create and `add_commits` on edit. Where the document has
no description (it often has none) or the field is ours (`key`, references by key, `metadata`),
OWN says what it is, once per field name; MODEL_OWN where a name means different things in
different places.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# The request bodies each kind's spec is sent in: (method, path), the first that has a field wins.
SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "BillableMetric": (("post", "/v1/billable-metrics/create"),),
    "Product": (("post", "/v1/contract-pricing/products/create"),),
    "RateCard": (("post", "/v1/contract-pricing/rate-cards/create"),
                 ("post", "/v1/contract-pricing/rate-cards/addRates")),
    "Customer": (("post", "/v1/customers"), ("post", "/v1/setCustomerBillingProviderConfigurations")),
    "Contract": (("post", "/v1/contracts/create"), ("post", "/v2/contracts/edit")),
}
# Keyed lists of a kind whose every item is the body of an endpoint of its own.
ITEM_SOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "Customer": {"commits": ("post", "/v1/contracts/customerCommits/create"),
                 "credits": ("post", "/v1/contracts/customerCredits/create")},
}

OWN: dict[str, str] = {
    # the envelope
    "apiVersion": "Manifest format version: billing-reconciler/v1.",
    "kind": "What this document describes: BillableMetric, Product, RateCard, Customer or Contract.",
    "metadata": "The object's key (metadata.name) and bookkeeping that is never sent to the billing API.",
    "spec": "The object as the billing API takes it; references to other objects name their keys.",
    "labels": "Free-form key/value labels for people and tools; not sent to the billing API.",
    "annotations": "Free-form key/value notes; not sent to the billing API.",
    # our keys and references by key
    "key": "This item's key, unique in its list: how plans, history and later edits name it "
           "(the billing API knows the item by an id the store maps to this key).",
    "product": "Key of a Product manifest.",
    "credit_type": "Name of the credit type (pricing unit) as the billing API lists it, e.g. 'USD (cents)' "
                   "(the default) or a custom one made in Metronome's UI.",
    "fiat_credit_type": "Name of the rate card's fiat credit type as the billing API lists it (default 'USD (cents)').",
    "transition": "This contract supersedes or renews another of the same customer: `from` names its key, "
                  "`type` is SUPERSEDE or RENEWAL; the other contract ends when this one starts.",
    "future_invoice_behavior": "What happens to the superseded contract's invoices after the transition "
                               "(e.g. `trueup: REMOVE` drops its future postpaid true-ups).",
    "custom_credit_type": "Name of a custom credit type (pricing unit) as the billing API lists it; "
                          "credit types are made in Metronome's UI and referenced here by name.",
    "applicable_products": "Keys of the Product manifests this applies to.",
    "composite_products": "Keys of the Product manifests whose spend this composite product is computed from.",
    "rate_card": "Key of the RateCard manifest the contract prices usage with.",
    "customer": "Key of the Customer manifest this contract belongs to.",
    "billable_metric": "Key of the BillableMetric manifest that meters this product's usage.",
    "commits": "Commits: amounts the customer commits to spend, drawn down by usage; each with a key.",
    "credits": "Credits: amounts granted to the customer, drawn down by usage; each with a key.",
    "overrides": "Overrides of the rate card's prices for this contract; each with a key. An override "
                 "cannot be edited: changing one removes it and adds it again.",
    "scheduled_charges": "Charges invoiced on a schedule (fees, platform charges); each with a key.",
    "recurring_commits": "Commits granted again every period; each with a key. They are ended "
                         "(ending_before), never archived.",
    "recurring_credits": "Credits granted again every period; each with a key. They are ended "
                         "(ending_before), never archived.",
    "discounts": "Discounts invoiced on a schedule (negative charges); each with a key. They cannot be edited "
                 "or archived through contract edits.",
    "professional_services": "Professional services sold on the contract, invoiced separately; each with a key. "
                             "They cannot be edited or archived through contract edits.",
    "rates": "The rate card's prices, each for a product from starting_at (until ending_before).",
    "usage_filter": "Which usage this contract takes: events whose group_key property has one of "
                    "group_values, from starting_at.",
    "customer_billing_provider_configurations": "Where the customer's invoices go (Stripe, AWS/Azure/GCP "
                                                "marketplace...); each with a key contracts name.",
    "customer_revenue_system_configurations": "Revenue systems (e.g. NetSuite, Salesforce) the customer is "
                                              "linked to.",
    "billing_cycle_config": "When the subscription's billing periods start.",
    # fields the OpenAPI document leaves undescribed
    "access": "Rounding of the access (balance) amount of a prorated recurring grant.",
    "invoice": "Rounding of the invoiced amount of a prorated recurring grant.",
    "access_type": "What the balance is counted in: SPEND (money) or QUANTITY.",
    "add_seat_ids": "Seats (ids) to add, from starting_at.",
    "remove_seat_ids": "Seats (ids) to remove, from starting_at.",
    "add_unassigned_seats": "Unassigned seats to add, from starting_at.",
    "remove_unassigned_seats": "Unassigned seats to remove, from starting_at.",
    "seat_ids": "Seat ids (e.g. user emails).",
    "amount": "Amount in cents (of the credit type; US dollars unless another is named).",
    "amount_distribution": "How a recurring schedule's amount is spread: DIVIDED, DIVIDED_ROUNDED or EACH "
                           "(each invoice gets the whole amount).",
    "anchor_date": "Date the billing periods are counted from.",
    "any_commits_or_credits": "Count every commit and credit of the contract toward the threshold.",
    "apply_seat_increase_config": "Whether a seat increase grants a prorated share of the recurring amount.",
    "billing_frequency": "How often the subscription is billed: MONTHLY, QUARTERLY or ANNUAL.",
    "cap": "The most the discount takes off.",
    "child_access": "Which child contracts may draw on this commit.",
    "collection_schedule": "ADVANCE (billed at the start of each period) or ARREARS (at its end).",
    "commit": "The commit made when the threshold is reached.",
    "contract_ids": "Ids of the child contracts that may draw on this commit.",
    "credit_type_id": "Id of the credit type amounts are in (default: US dollars, in cents).",
    "custom_credit_type_id": "Id of a custom credit type the amounts are in.",
    "decimal_places": "Number of decimal places kept.",
    "description": "Text shown on invoices and in the billing app.",
    "discount_configuration": "Discount applied to the threshold commit's invoices.",
    "duration": "How long each threshold commit lasts.",
    "ending_before": "When this stops (exclusive), an RFC 3339 UTC timestamp.",
    "entitled": "Whether the customer may use the product at this rate.",
    "fiat_per_custom_credit": "How many cents one unit of the custom credit type is worth.",
    "frequency": "How often this recurs.",
    "group_key": "The event property usage is grouped by.",
    "group_values": "The values of group_key this contract takes usage for.",
    "include_composite_spend": "Whether spend on composite products counts toward this product.",
    "invoice_placement": "Which invoice the discount appears on.",
    "multiplier": "Factor applied to the rate card's price (0.9 = 10% off).",
    "name": "Display name.",
    "net_payment_terms_days": "Days the customer has to pay an invoice.",
    "payment_gate_config": "Whether a payment must succeed before the threshold commit is granted.",
    "prepaid_balance_threshold_configuration": "Recharge the prepaid balance with a new commit when it falls "
                                               "below the threshold.",
    "spend_threshold_configuration": "Invoice the customer when spend reaches the threshold.",
    "price": "Price per unit, in cents (fractions of a cent allowed).",
    "proration": "How a partial first or last period is charged.",
    "proration_rounding": "Rounding of prorated recurring amounts.",
    "quantity": "Number of units.",
    "quantity_delta": "Change in the number of units (negative to remove).",
    "quantity_updates": "Scheduled changes of the subscription's quantity (append-only).",
    "rate_type": "LIST_RATE (the rate card's price) or COMMIT_RATE (the commit's own rate).",
    "rollover_fraction": "Share of the unused balance carried into a renewal contract (0 to 1).",
    "rounding": "How prorated amounts are rounded.",
    "rounding_method": "ROUND_UP, ROUND_DOWN or ROUND_HALF_UP.",
    "schedule_items": "The schedule's entries.",
    "seat_config": "Seat-based subscriptions: the event property naming the seat.",
    "seat_updates": "Scheduled seat changes (append-only).",
    "size": "Units in this tier (the last tier has none: it takes the rest).",
    "spend_tracker_alias": "Alias of the spend tracker this applies to.",
    "sql_breakdown_granularity": "Granularity of the SQL usage breakdown.",
    "starting_at": "When this starts (inclusive), an RFC 3339 UTC timestamp.",
    "subscription_rate": "The product and billing frequency the subscription is charged at.",
    "tags": "Tags that rates, commits and overrides can select this product by.",
    "threshold_balance_specifiers": "Which commits and credits count toward the threshold balance.",
    "type": "The kind of this item (an enumeration the API defines).",
    "unit": "Unit of the duration: PERIODS (of the recurrence).",
    "unit_price": "Price per unit, in cents.",
    "usage_statement_schedule": "When usage invoices are issued: frequency and the day periods start.",
    "value": "Number of units of the duration.",
}

# Fields whose manifest meaning differs from the API field they become (a key where the API takes
# an id; a keyed list): OWN describes them even where the document has a description.
OURS_FIRST = frozenset({"key", "product", "applicable_products", "composite_products", "rate_card",
                        "customer", "billable_metric", "commits", "credits", "overrides", "scheduled_charges",
                        "recurring_commits", "recurring_credits", "customer_billing_provider_configurations",
                        "discounts", "professional_services", "credit_type", "fiat_credit_type",
                        "custom_credit_type"})

# Where one name means something else in one model: "Model.field" -> description.
MODEL_OWN: dict[str, str] = {
    "Metadata.name": "The object's key: how plans, history and other manifests name it "
                     "(lowercase letters, digits, '.', '_', '-').",
    "ProductSpec.type": "USAGE, SUBSCRIPTION, COMPOSITE, FIXED or PRO_SERVICE.",
    "OverrideSpecifier.commits": "Keys of the contract's commits this override applies to.",
    "OverrideSpecifier.recurring_commits": "Keys of the contract's recurring commits this override applies to.",
}


def describe(schema: dict[str, Any], kind: str, root: dict[str, Any] | None = None) -> None:
    """Fill in `description` for every property of `root` (default: `schema`) and of every
    definition in `schema["$defs"]` it reaches, in place. A description already there is kept."""
    from ..emulator.openapi import document

    doc = document()
    components = doc["components"]["schemas"]
    defs = schema.get("$defs", {})
    root = schema if root is None else root
    for name, prop in root.get("properties", {}).items():  # the envelope is ours
        if name in OWN and not prop.get("description"):
            prop["description"] = OWN[name]
    def body(method: str, path: str) -> dict[str, Any]:
        return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    bodies = [body(method, path) for method, path in SOURCES[kind]]
    items = ITEM_SOURCES.get(kind, {})
    if items:
        bodies.append({"properties": {name: {"type": "array", "items": body(*source)}
                                      for name, source in items.items()}})
    _describe(root, "", {"spec": bodies}, defs, components, set())


def _describe(node: dict[str, Any], model: str, api: dict[str, list[dict[str, Any]]], defs: dict[str, Any],
              components: dict[str, Any], seen: set) -> None:
    """`api`: for each property name of `node`, the OpenAPI schemas of the field it becomes."""
    for name, prop in node.get("properties", {}).items():
        matches = api.get(name, [])
        if not prop.get("description"):
            text = MODEL_OWN.get(f"{model}.{name}") or (OWN.get(name) if name in OURS_FIRST else None) or next(
                (d for d in (_description(m, components) for m in matches) if d), None) or OWN.get(name)
            if text:
                prop["description"] = text
        for ref in _refs(prop):
            key = (ref, tuple(id(m) for m in matches))
            if key in seen:
                continue
            seen.add(key)
            nested = defs[ref]
            inner: dict[str, list[dict[str, Any]]] = {}
            for match in matches:
                properties = _properties(match, components)
                for field in nested.get("properties", {}):
                    for candidate in _api_names(field):
                        if candidate in properties:
                            inner.setdefault(field, []).append(properties[candidate])
                            break
            _describe(nested, ref, inner, defs, components, seen)


def _api_names(field: str) -> Iterator[str]:
    """The API names a manifest field may have: itself, a reference's `_id`/`_ids`, an edit's `add_`."""
    yield field
    yield f"{field}_id"
    if field.endswith("s"):
        yield f"{field[:-1]}_ids"
    yield f"add_{field}"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(node: Any, components: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node and depth < 50:
        node = components[node["$ref"].rsplit("/", 1)[1]]
        depth += 1
    return node if isinstance(node, dict) else {}


def _properties(node: Any, components: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """An OpenAPI schema's properties: $ref followed, arrays to their items, allOf/oneOf/anyOf merged."""
    node = _resolve(node, components)
    if depth > 20:
        return {}
    if node.get("type") == "array" and "items" in node:
        return _properties(node["items"], components, depth + 1)
    properties = dict(node.get("properties", {}))
    for combinator in ("allOf", "oneOf", "anyOf"):
        for member in node.get(combinator, []):
            for name, sub in _properties(member, components, depth + 1).items():
                properties.setdefault(name, sub)
    return properties


def _description(node: Any, components: dict[str, Any]) -> str | None:
    if isinstance(node, dict) and node.get("description"):
        return node["description"]
    resolved = _resolve(node, components)
    return resolved.get("description") or None
