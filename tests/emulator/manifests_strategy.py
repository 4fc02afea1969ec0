"""Hypothesis strategies for whole manifest trees: every kind, every keyed list of a contract.

Wide on purpose: decimals with several places, timestamps inside days, several items per list,
every optional field the model and the rules accept drawn on or off. Every document is checked
against the manifest models and the validation rules as it is drawn (`valid`), so a strategy that
drifts outside what the loader accepts fails loudly here rather than as a confusing plan error.

`accounts()` draws a catalog (metrics, products, rate cards), customers and their contracts;
`edited()` draws the same account after edits the billing API allows (items added, removed,
changed through update_* keys; names, ending_before, usage filters, thresholds, aliases...).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from billing_reconciler.manifests import model as m
from billing_reconciler.manifests.rules import check_spec
from billing_reconciler.money import USD_CREDIT_TYPE_NAME
from tests.plan.support import doc

# A custom credit type only rate cards name (by name; the tests' emulators hold it: CUSTOM_CREDIT_TYPE_ID).
CUSTOM_CREDIT_TYPE = "cloud consumption units"
CUSTOM_CREDIT_TYPE_ID = "8d3a5a6c-6e4b-4b8e-9f1e-2c7d0f1a9b3e"

BASE = datetime(2024, 11, 1, tzinfo=UTC)
ITEM_KEYS = ("alpha", "beta", "gamma", "delta")


def ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- scalars -----------------------------------------------------------------------------------

def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places,
                       allow_nan=False, allow_infinity=False)


def text(prefix: str) -> st.SearchStrategy[str]:
    return st.builds(lambda n, s: f"{prefix} {n}{s}", st.integers(1, 99), st.sampled_from(["", " ä", " & co", "-x"]))


cents = st.integers(1, 5_000_000).map(Decimal)
prices = st.one_of(decimals("0", "500", 5), st.integers(0, 100_000).map(Decimal))
quantities = st.one_of(decimals("0.01", "50", 3), st.integers(1, 20).map(Decimal))
fractions = decimals("0", "1", 4)
priorities = st.one_of(st.integers(1, 100).map(Decimal), decimals("0.5", "99", 2))
tags = st.lists(st.sampled_from(["cloud", "network", "storage", "ai"]), min_size=1, max_size=2, unique=True)
identifiers = st.from_regex(r"[a-z][a-z0-9_]{1,8}", fullmatch=True)
custom_fields = st.dictionaries(st.sampled_from(["sfdc_id", "region", "owner"]), text("v"), min_size=1, max_size=2)


@st.composite
def instant(draw, low: datetime, days: int) -> datetime:
    """A time inside a day: any minute in [low, low + days)."""
    return low + timedelta(minutes=draw(st.integers(0, days * 24 * 60 - 1)))


@st.composite
def window(draw, low: datetime, days: int = 300, open_end: bool = False) -> tuple[datetime, datetime | None]:
    start = draw(instant(low, days))
    if open_end and draw(st.booleans()):
        return start, None
    return start, start + timedelta(minutes=draw(st.integers(60, 400 * 24 * 60)))


def maybe(draw, spec: dict[str, Any], name: str, strategy: st.SearchStrategy) -> None:
    if draw(st.booleans()):
        spec[name] = draw(strategy)


def valid(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec, checked by the model and the rules (the references are checked by the loader)."""
    model = m.SPEC_MODELS[kind].model_validate(spec)
    findings = check_spec(kind, model)
    assert not findings, (kind, findings, spec)
    return spec


def num(value: Decimal) -> Any:
    """Decimals go into documents as Decimals (DataAccount writes them as exact JSON numbers)."""
    return value


# --- catalog -----------------------------------------------------------------------------------

@st.composite
def metric(draw, key: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(text("Metric")),
                            "event_type_filter": {"in_values": draw(st.lists(identifiers, min_size=1, max_size=2, unique=True))}}
    aggregation = draw(st.sampled_from(["COUNT", "SUM", "MAX", "UNIQUE", "LATEST"]))
    spec["aggregation_type"] = aggregation
    if aggregation != "COUNT" or draw(st.booleans()):
        spec["aggregation_key"] = draw(identifiers)
    if draw(st.booleans()):
        spec["property_filters"] = draw(st.lists(st.one_of(
            st.builds(lambda n: {"name": n, "exists": True}, identifiers),
            st.builds(lambda n, v: {"name": n, "in_values": v}, identifiers, st.lists(identifiers, min_size=1, max_size=2)),
        ), min_size=1, max_size=2))
    # Always [region, zone]: contracts' usage filters route by region, and a filter's group_key must be
    # a group key of the metrics on the contract's card (manifests/references.py).
    spec["group_keys"] = [["region", "zone"], *draw(st.lists(st.lists(identifiers, min_size=1, max_size=2), max_size=1))]
    maybe(draw, spec, "custom_fields", custom_fields)
    return doc("BillableMetric", key, valid("BillableMetric", spec))


@st.composite
def product(draw, key: str, type_: str, metrics: dict[str, dict], others: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(text("Product")), "type": type_}
    if type_ == "USAGE":
        spec["billable_metric"] = draw(st.sampled_from(sorted(metrics)))
        if metrics[spec["billable_metric"]].get("group_keys"):
            maybe(draw, spec, "pricing_group_key", st.just(["region"]))
            maybe(draw, spec, "presentation_group_key", st.just(["zone"]))
        maybe(draw, spec, "quantity_conversion", st.builds(
            lambda f, o, n: {"conversion_factor": f, "operation": o, **({"name": n} if n else {})},
            quantities, st.sampled_from(["MULTIPLY", "DIVIDE"]), st.sampled_from([None, "per GB"])))
        maybe(draw, spec, "quantity_rounding", st.builds(
            lambda p, r: {"decimal_places": p, "rounding_method": r}, st.integers(0, 4),
            st.sampled_from(["ROUND_UP", "ROUND_DOWN", "ROUND_HALF_UP"])))
        maybe(draw, spec, "exclude_free_usage", st.booleans())
    if type_ == "COMPOSITE":
        if others and draw(st.booleans()):
            spec["composite_products"] = draw(st.lists(st.sampled_from(others), min_size=1, max_size=2, unique=True))
        else:
            spec["composite_tags"] = draw(tags)
        # include_composite_spend: accepted by the model, refused by the API (not in the OpenAPI document)
    maybe(draw, spec, "tags", tags)
    maybe(draw, spec, "is_refundable", st.booleans())
    maybe(draw, spec, "netsuite_internal_item_id", identifiers)
    maybe(draw, spec, "custom_fields", custom_fields)
    return doc("Product", key, valid("Product", spec))


@st.composite
def tiers(draw, value: st.SearchStrategy, name: str = "price") -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    out = [{name: draw(value), "size": draw(quantities)} for _ in range(count - 1)]
    return [*out, {name: draw(value)}]


@st.composite
def rate(draw, product: str, start: datetime, ptype: str, pricing: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"product": product, "starting_at": ts(start), "entitled": draw(st.booleans())}
    if ptype == "SUBSCRIPTION":
        spec.update(rate_type="SUBSCRIPTION", price=draw(prices),
                    billing_frequency=draw(st.sampled_from(["MONTHLY", "QUARTERLY", "ANNUAL"])))
        maybe(draw, spec, "quantity", quantities)
        maybe(draw, spec, "is_prorated", st.just(True))
    elif draw(st.booleans()):
        spec.update(rate_type="TIERED", tiers=draw(tiers(prices)))
    else:
        spec.update(rate_type="FLAT", price=draw(prices))
    if pricing and draw(st.booleans()):
        spec["pricing_group_values"] = {"region": draw(st.sampled_from(["US", "EU"]))}
    if draw(st.booleans()):
        spec["ending_before"] = ts(start + timedelta(days=draw(st.integers(30, 900)), minutes=draw(st.integers(0, 1439))))
    maybe(draw, spec, "credit_type", st.just(USD_CREDIT_TYPE_NAME))
    maybe(draw, spec, "commit_rate", st.builds(lambda p: {"rate_type": "FLAT", "price": p}, prices))
    return spec


@st.composite
def rate_card(draw, key: str, products: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(text("Card"))}
    maybe(draw, spec, "description", text("About"))
    maybe(draw, spec, "aliases", st.builds(lambda n: [{"name": f"{key}-{n}"}], st.sampled_from(["std", "default"])))
    maybe(draw, spec, "fiat_credit_type", st.just(USD_CREDIT_TYPE_NAME))
    maybe(draw, spec, "credit_type_conversions", st.builds(
        lambda f: [{"custom_credit_type": CUSTOM_CREDIT_TYPE, "fiat_per_custom_credit": f}], prices))
    priced = [k for k, p in products.items() if p["type"] in ("USAGE", "SUBSCRIPTION", "FIXED")]
    rates = []
    chosen = draw(st.lists(st.sampled_from(priced), min_size=1, max_size=4, unique=True))
    chosen += [] if "seats" in chosen else ["seats"]  # every card prices the subscription product
    for product_key in chosen:
        ptype = products[product_key]["type"]
        pricing = "pricing_group_key" in products[product_key]
        start = draw(instant(BASE - timedelta(days=400), 60))
        first = draw(rate(product_key, start, ptype, pricing))
        rates.append(first)
        if first.get("ending_before") and draw(st.booleans()):  # a later period of the same rate line
            later = draw(rate(product_key, datetime.strptime(first["ending_before"], "%Y-%m-%dT%H:%M:%SZ")
                              .replace(tzinfo=UTC), ptype, False))
            later.pop("pricing_group_values", None)
            if "pricing_group_values" in first:
                later["pricing_group_values"] = first["pricing_group_values"]
            if ptype == "SUBSCRIPTION":
                later["billing_frequency"] = first["billing_frequency"]
            rates.append(later)
    spec["rates"] = rates
    return doc("RateCard", key, valid("RateCard", spec))


@st.composite
def catalogs(draw) -> list[dict[str, Any]]:
    metrics = [draw(metric(k)) for k in draw(st.lists(st.sampled_from(["calls", "bytes"]), min_size=1, max_size=2, unique=True))]
    metric_keys = {d["metadata"]["name"]: d["spec"] for d in metrics}
    products: dict[str, dict[str, Any]] = {}
    plan = [("api", "USAGE"), ("fee", "FIXED"), ("seats", "SUBSCRIPTION"), ("services", "PRO_SERVICE")]
    plan += [(k, t) for k, t in (("storage", "USAGE"), ("support", "FIXED")) if draw(st.booleans())]
    plan += [("bundle", "COMPOSITE")]
    docs = list(metrics)
    for key, type_ in plan:
        d = draw(product(key, type_, metric_keys, [k for k, p in products.items() if p["type"] == "USAGE"]))
        products[key] = d["spec"]
        docs.append(d)
    for key in draw(st.lists(st.sampled_from(["card-a", "card-b"]), min_size=1, max_size=2, unique=True)):
        docs.append(draw(rate_card(key, products)))
    return docs


# --- customers ---------------------------------------------------------------------------------

PROVIDERS = {
    "aws": ("aws_marketplace", {"aws_customer_id": "c1", "aws_product_code": "p1", "aws_region": "us-east-1"}),
    "stripe": ("stripe", {"stripe_customer_id": "cus_1", "stripe_collection_method": "charge_automatically"}),
    "azure": ("azure_marketplace", {"azure_subscription_id": "sub-1"}),
}


@st.composite
def billing_provider_configurations(draw, name: str) -> list[dict[str, Any]]:
    out = []
    for key in draw(st.lists(st.sampled_from(sorted(PROVIDERS)), min_size=1, max_size=3, unique=True)):
        provider, config = PROVIDERS[key]
        out.append({"key": key, "billing_provider": provider, "delivery_method": "direct_to_billing_provider",
                    "configuration": {k: f"{v}-{name}" for k, v in config.items()}})
    return out


@st.composite
def customer(draw, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(text(f"Customer {name}"))}
    maybe(draw, spec, "ingest_aliases", st.lists(st.sampled_from([f"{name}-prod", f"ops@{name}.example", f"{name}-eu"]),
                                                 min_size=1, max_size=3, unique=True))
    maybe(draw, spec, "custom_fields", custom_fields)
    maybe(draw, spec, "customer_billing_provider_configurations", billing_provider_configurations(name))
    return doc("Customer", name, valid("Customer", spec))


# --- contract terms ----------------------------------------------------------------------------

class Terms:
    """What a contract's terms may name: products by type, the contract's window."""

    def __init__(self, catalog: list[dict[str, Any]], start: datetime):
        self.start = start
        self.products = {d["metadata"]["name"]: d["spec"] for d in catalog if d["kind"] == "Product"}
        self.cards = {d["metadata"]["name"]: d["spec"] for d in catalog if d["kind"] == "RateCard"}
        self.card: str | None = None

    def subscription_rates(self) -> list[tuple[str, str]]:
        """(product, billing_frequency) a subscription may name: the card's SUBSCRIPTION rates."""
        if self.card is None:
            return [(p, f) for p in self.of_type("SUBSCRIPTION") for f in ("MONTHLY", "QUARTERLY", "ANNUAL")]
        return sorted({(r["product"], r["billing_frequency"]) for r in self.cards[self.card]["rates"]
                       if r["rate_type"] == "SUBSCRIPTION"})

    def of_type(self, *types: str) -> list[str]:
        return sorted(k for k, p in self.products.items() if p["type"] in types)


@st.composite
def scope(draw, terms: Terms) -> dict[str, Any]:
    """applicable_products / applicable_product_tags / specifiers / nothing (one of them)."""
    choice = draw(st.sampled_from(["none", "products", "tags", "specifiers"]))
    if choice == "products":
        return {"applicable_products": draw(st.lists(st.sampled_from(terms.of_type("USAGE", "COMPOSITE")),
                                                     min_size=1, max_size=2, unique=True))}
    if choice == "tags":
        return {"applicable_product_tags": draw(tags)}
    if choice == "specifiers":
        return {"specifiers": draw(st.lists(st.one_of(
            st.builds(lambda p: {"product": p}, st.sampled_from(terms.of_type("USAGE"))),
            st.builds(lambda t: {"product_tags": t}, tags),
            st.builds(lambda v: {"pricing_group_values": {"region": v}}, st.sampled_from(["US", "EU"])),
        ), min_size=1, max_size=2))}
    return {}


def _add_distinct(items: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    items.extend(i for i in new if i not in items)


@st.composite
def schedule_items(draw, terms: Terms, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        item: dict[str, Any] = {"timestamp": ts(draw(instant(terms.start, 365)))}
        if draw(st.booleans()):
            item["amount"] = draw(cents)
        else:
            item.update(unit_price=draw(cents), quantity=draw(quantities))
        if item not in out:  # identical items in one schedule are refused (merge them)
            out.append(item)
    return out


@st.composite
def recurring_schedule(draw, terms: Terms) -> dict[str, Any]:
    start, end = draw(window(terms.start, 100))
    spec: dict[str, Any] = {"starting_at": ts(start), "ending_before": ts(end),
                            "frequency": draw(st.sampled_from(["MONTHLY", "QUARTERLY", "SEMI_ANNUAL", "ANNUAL"])),
                            "amount_distribution": draw(st.sampled_from(["DIVIDED", "DIVIDED_ROUNDED", "EACH"]))}
    if draw(st.booleans()):
        spec["amount"] = draw(cents)
    else:
        spec.update(unit_price=draw(cents), quantity=draw(quantities))
    return spec


@st.composite
def invoice_schedule(draw, terms: Terms, items: int | None = None) -> dict[str, Any]:
    if items is None and draw(st.booleans()):
        spec: dict[str, Any] = {"recurring_schedule": draw(recurring_schedule(terms))}
    else:
        spec = {"schedule_items": draw(schedule_items(terms, items or draw(st.integers(1, 3))))}
    maybe(draw, spec, "do_not_invoice", st.booleans())
    return spec


@st.composite
def access_schedule(draw, terms: Terms, items: int) -> dict[str, Any]:
    out = []
    for _ in range(items):
        start, end = draw(window(terms.start, 200))
        item = {"amount": draw(cents), "starting_at": ts(start), "ending_before": ts(end)}
        if item not in out:  # identical items in one schedule are refused (merge them)
            out.append(item)
    spec: dict[str, Any] = {"schedule_items": out}
    maybe(draw, spec, "credit_type", st.just(USD_CREDIT_TYPE_NAME))
    return spec


def _common(draw, spec: dict[str, Any], terms: Terms) -> None:
    spec.update(draw(scope(terms)))
    maybe(draw, spec, "name", text("Term"))
    maybe(draw, spec, "description", text("Description"))
    maybe(draw, spec, "priority", priorities)
    maybe(draw, spec, "rate_type", st.sampled_from(["COMMIT_RATE", "LIST_RATE"]))
    maybe(draw, spec, "rollover_fraction", fractions)
    maybe(draw, spec, "netsuite_sales_order_id", identifiers)
    maybe(draw, spec, "custom_fields", custom_fields)


@st.composite
def commit(draw, key: str, terms: Terms) -> dict[str, Any]:
    type_ = draw(st.sampled_from(["PREPAID", "POSTPAID"]))
    spec: dict[str, Any] = {"key": key, "type": type_, "product": draw(st.sampled_from(terms.of_type("FIXED"))),
                            "access_schedule": draw(access_schedule(terms, 1 if type_ == "POSTPAID" else draw(st.integers(1, 3))))}
    if type_ == "POSTPAID":
        spec["invoice_schedule"] = draw(invoice_schedule(terms, 1))
    else:
        maybe(draw, spec, "invoice_schedule", invoice_schedule(terms))
    _common(draw, spec, terms)
    maybe(draw, spec, "hierarchy_configuration", st.just({"child_access": {"type": "ALL"}}))
    return spec


@st.composite
def credit(draw, key: str, terms: Terms) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": key, "product": draw(st.sampled_from(terms.of_type("FIXED"))),
                            "access_schedule": draw(access_schedule(terms, draw(st.integers(1, 3))))}
    _common(draw, spec, terms)
    return spec


@st.composite
def override(draw, key: str, terms: Terms, explicit: bool, commit_keys: list[str],
             recurring_keys: list[str] = ()) -> dict[str, Any]:
    start, end = draw(window(terms.start, 200, open_end=True))
    spec: dict[str, Any] = {"key": key, "starting_at": ts(start)}
    if end is not None:
        spec["ending_before"] = ts(end)
    type_ = draw(st.sampled_from(["MULTIPLIER", "OVERWRITE", "TIERED"] if explicit else ["MULTIPLIER", "OVERWRITE"]))
    spec["type"] = type_
    if type_ == "MULTIPLIER":
        spec["multiplier"] = draw(decimals("0", "3", 4))
        if explicit or draw(st.booleans()):
            spec["priority"] = draw(priorities)
    elif type_ == "OVERWRITE":
        if draw(st.booleans()):
            spec["overwrite_rate"] = {"rate_type": "FLAT", "price": draw(prices)}
        else:
            spec["overwrite_rate"] = {"rate_type": "TIERED", "tiers": draw(tiers(prices))}
        maybe(draw, spec, "priority", priorities)
    else:
        spec["tiers"] = draw(tiers(decimals("0", "2", 3), "multiplier"))
        spec["priority"] = draw(priorities)
    commit_specific = bool(commit_keys or recurring_keys) and draw(st.booleans())
    target = draw(st.sampled_from(["product", "tags", "specifiers"]))
    if commit_specific or target == "specifiers":
        specifier: dict[str, Any] = draw(st.one_of(
            st.builds(lambda p: {"product": p}, st.sampled_from(terms.of_type("USAGE"))),
            st.builds(lambda t: {"product_tags": t}, tags),
            st.builds(lambda v: {"pricing_group_values": {"region": v}}, st.sampled_from(["US", "EU"])),
        ))
        maybe(draw, specifier, "billing_frequency", st.sampled_from(["MONTHLY", "QUARTERLY"]))
        if commit_specific:
            if commit_keys and (not recurring_keys or draw(st.booleans())):
                specifier["commits"] = draw(st.lists(st.sampled_from(commit_keys), min_size=1, max_size=2, unique=True))
            else:
                specifier["recurring_commits"] = draw(st.lists(st.sampled_from(list(recurring_keys)), min_size=1,
                                                               max_size=2, unique=True))
            spec["is_commit_specific"] = True
            maybe(draw, spec, "target", st.sampled_from(["COMMIT_RATE", "LIST_RATE"]))
        spec["override_specifiers"] = [specifier]
    elif target == "product":
        spec["product"] = draw(st.sampled_from(terms.of_type("USAGE", "COMPOSITE")))
    else:
        spec["applicable_product_tags"] = draw(tags)
    maybe(draw, spec, "entitled", st.booleans())
    return spec


@st.composite
def scheduled_charge(draw, key: str, terms: Terms) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": key, "product": draw(st.sampled_from(terms.of_type("FIXED"))),
                            "schedule": draw(invoice_schedule(terms))}
    maybe(draw, spec, "name", text("Charge"))
    maybe(draw, spec, "netsuite_sales_order_id", identifiers)
    maybe(draw, spec, "custom_fields", custom_fields)
    return spec


@st.composite
def subscription(draw, key: str, terms: Terms) -> dict[str, Any]:
    start, end = draw(window(terms.start, 60, open_end=True))
    behavior = draw(st.sampled_from([None, "BILL_IMMEDIATELY", "BILL_ON_NEXT_COLLECTION_DATE"]))
    spec: dict[str, Any] = {
        "key": key, "collection_schedule": "ADVANCE" if behavior == "BILL_IMMEDIATELY" else draw(st.sampled_from(["ADVANCE", "ARREARS"])),
        "proration": {"is_prorated": draw(st.booleans()), **({"invoice_behavior": behavior} if behavior else {})},
        "subscription_rate": dict(zip(("product", "billing_frequency"), draw(st.sampled_from(terms.subscription_rates())))),
        "starting_at": ts(start), "temporary_id": f"sub-{key}",
    }
    if end is not None:
        spec["ending_before"] = ts(end)
    if draw(st.booleans()):
        spec["quantity_management_mode"] = "SEAT_BASED"
        spec["seat_config"] = {"initial_seat_ids": draw(st.lists(st.sampled_from(["u1", "u2", "u3"]), max_size=3, unique=True)),
                               "seat_group_key": "user_id"}
        if draw(st.booleans()):
            spec["seat_updates"] = {"add_seat_ids": [{"seat_ids": ["u9"], "starting_at": ts(draw(instant(start, 90)))}],
                                    "add_unassigned_seats": [{"quantity": draw(st.integers(1, 5)),
                                                              "starting_at": ts(draw(instant(start, 90)))}]}
    else:
        maybe(draw, spec, "quantity_management_mode", st.just("QUANTITY_ONLY"))
        spec["initial_quantity"] = draw(st.integers(0, 50))
        if draw(st.booleans()):
            spec["quantity_updates"] = [
                {"starting_at": ts(draw(instant(start, 90))), **draw(st.sampled_from([
                    {"quantity": 7}, {"quantity_delta": 2}, {"quantity_delta": -1}]))}
                for _ in range(draw(st.integers(1, 2)))]
    maybe(draw, spec, "name", text("Subscription"))
    maybe(draw, spec, "description", text("Seats"))
    # billing_cycle_config: accepted by the model, refused by the API (not in the OpenAPI document)
    return spec


@st.composite
def recurring(draw, key: str, terms: Terms, subscriptions: list[dict[str, Any]], is_commit: bool) -> dict[str, Any]:
    start, end = draw(window(terms.start, 100, open_end=True))
    spec: dict[str, Any] = {"key": key, "product": draw(st.sampled_from(terms.of_type("FIXED"))),
                            "priority": draw(priorities), "starting_at": ts(start),
                            "access_amount": {"unit_price": draw(cents)},
                            "commit_duration": {"value": draw(quantities)}}
    if end is not None:
        spec["ending_before"] = ts(end)
    if subscriptions and draw(st.booleans()):
        sub = draw(st.sampled_from(subscriptions))
        seat_based = sub.get("quantity_management_mode") == "SEAT_BASED"
        spec["subscription_config"] = {
            "subscription_id": sub["temporary_id"], "apply_seat_increase_config": {"is_prorated": draw(st.booleans())},
            **({"allocation": draw(st.sampled_from(["POOLED", "INDIVIDUAL"]))} if seat_based else {})}
        maybe(draw, spec["access_amount"], "quantity", quantities)
    else:
        spec["access_amount"]["quantity"] = draw(quantities)
    if is_commit and draw(st.booleans()):
        spec["invoice_amount"] = {"unit_price": draw(cents), "quantity": draw(quantities)}
    maybe(draw, spec, "recurrence_frequency", st.sampled_from(["MONTHLY", "QUARTERLY", "ANNUAL"]))
    maybe(draw, spec, "proration", st.sampled_from(["NONE", "FIRST", "LAST", "FIRST_AND_LAST"]))
    maybe(draw, spec, "rollover_fraction", fractions)
    maybe(draw, spec, "rate_type", st.sampled_from(["COMMIT_RATE", "LIST_RATE"]))
    spec.update(draw(scope(terms)))
    maybe(draw, spec, "name", text("Recurring"))
    maybe(draw, spec, "description", text("Every period"))
    return spec


@st.composite
def professional_service(draw, key: str, terms: Terms) -> dict[str, Any]:
    spec = {"key": key, "product": draw(st.sampled_from(terms.of_type("PRO_SERVICE"))), "unit_price": draw(cents),
            "quantity": draw(quantities), "max_amount": draw(cents)}
    maybe(draw, spec, "description", text("Services"))
    return spec


@st.composite
def threshold(draw, terms: Terms, prepaid: bool) -> dict[str, Any]:
    commit_: dict[str, Any] = {"product": draw(st.sampled_from(terms.of_type("FIXED")))}
    maybe(draw, commit_, "name", text("Threshold commit"))
    if prepaid:
        commit_.update(draw(scope(terms)))
    spec: dict[str, Any] = {"threshold_amount": draw(cents), "is_enabled": True, "commit": commit_,
                            "payment_gate_config": {"payment_gate_type": draw(st.sampled_from(["NONE", "EXTERNAL"]))}}
    if prepaid:
        spec["recharge_to_amount"] = spec["threshold_amount"] + draw(cents)
    maybe(draw, spec, "discount_configuration", st.builds(lambda f: {"payment_fraction": f}, fractions))
    return spec


def keys(draw, max_size: int = 3) -> list[str]:
    return draw(st.lists(st.sampled_from(ITEM_KEYS), max_size=max_size, unique=True))


def usage_filter(draw, start: datetime | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"group_key": "region",
                            "group_values": draw(st.lists(st.sampled_from(["US", "EU", "APAC"]), min_size=1, max_size=2, unique=True))}
    if start is not None:
        spec["starting_at"] = ts(start)
    return spec


@st.composite
def contract(draw, name: str, customer_doc: dict[str, Any], catalog: list[dict[str, Any]]) -> dict[str, Any]:
    start = draw(instant(BASE, 60))
    terms = Terms(catalog, start)
    explicit = draw(st.booleans())
    spec: dict[str, Any] = {"customer": customer_doc["metadata"]["name"], "starting_at": ts(start)}
    if draw(st.booleans()):
        spec["ending_before"] = ts(start + timedelta(days=draw(st.integers(200, 800)), minutes=draw(st.integers(0, 1439))))
    maybe(draw, spec, "name", text("Contract"))
    if draw(st.integers(0, 3)):
        spec["rate_card"] = terms.card = draw(st.sampled_from(sorted(terms.cards)))
    if explicit:
        spec["multiplier_override_prioritization"] = "EXPLICIT"
    maybe(draw, spec, "usage_statement_schedule", st.builds(
        lambda f, d: {"frequency": f, "day": d}, st.sampled_from(["MONTHLY", "QUARTERLY"]),
        st.sampled_from(["FIRST_OF_MONTH", "CONTRACT_START"])))
    maybe(draw, spec, "scheduled_charges_on_usage_invoices", st.just("ALL"))
    maybe(draw, spec, "net_payment_terms_days", st.sampled_from([Decimal(0), Decimal(15), Decimal(30)]))
    maybe(draw, spec, "custom_fields", custom_fields)
    configs = customer_doc["spec"].get("customer_billing_provider_configurations")
    if configs and draw(st.booleans()):
        spec["billing_provider_configuration"] = {"billing_provider_configuration": draw(st.sampled_from([c["key"] for c in configs]))}
    if draw(st.booleans()):
        spec["usage_filter"] = usage_filter(draw, start if draw(st.booleans()) else None)
    spec["commits"] = [draw(commit(k, terms)) for k in keys(draw)]
    spec["credits"] = [draw(credit(k, terms)) for k in keys(draw)]
    spec["scheduled_charges"] = [draw(scheduled_charge(k, terms)) for k in keys(draw)]
    spec["discounts"] = [draw(scheduled_charge(k, terms)) for k in keys(draw, 2)]
    spec["subscriptions"] = [draw(subscription(k, terms)) for k in keys(draw, 2)] if terms.subscription_rates() else []
    spec["recurring_commits"] = [draw(recurring(k, terms, spec["subscriptions"], True)) for k in keys(draw, 2)]
    spec["recurring_credits"] = [draw(recurring(k, terms, spec["subscriptions"], False)) for k in keys(draw, 2)]
    commit_keys = [c["key"] for c in spec["commits"]]
    recurring_keys = [c["key"] for c in spec["recurring_commits"]]
    spec["overrides"] = [draw(override(k, terms, explicit, commit_keys, recurring_keys)) for k in keys(draw)]
    spec["professional_services"] = [draw(professional_service(k, terms)) for k in keys(draw, 2)]
    if draw(st.booleans()):
        spec["spend_threshold_configuration"] = draw(threshold(terms, False))
    if draw(st.booleans()):
        spec["prepaid_balance_threshold_configuration"] = draw(threshold(terms, True))
    spec = {k: v for k, v in spec.items() if v != []}
    return doc("Contract", name, valid("Contract", spec))


@st.composite
def accounts(draw) -> list[dict[str, Any]]:
    catalog = draw(catalogs())
    docs = list(catalog)
    for name in draw(st.lists(st.sampled_from(["acme", "bolt"]), min_size=1, max_size=2, unique=True)):
        c = draw(customer(name))
        docs.append(c)
        docs.append(draw(contract(f"{name}-2025", c, catalog)))
    return docs


# --- edits the billing API allows --------------------------------------------------------------

NEW_KEYS = ("epsilon", "zeta")
ARCHIVABLE = ("commits", "credits", "scheduled_charges", "overrides")


def _named_commits(spec: dict[str, Any]) -> set[str]:
    return {k for o in spec.get("overrides", []) for s in o.get("override_specifiers", [])
            for k in s.get("commits", []) + s.get("recurring_commits", [])}


@st.composite
def edited_contract(draw, d: dict[str, Any], catalog: list[dict[str, Any]]) -> None:
    spec = d["spec"]
    start = datetime.strptime(spec["starting_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    terms = Terms(catalog, start)
    terms.card = spec.get("rate_card")
    explicit = spec.get("multiplier_override_prioritization") == "EXPLICIT"
    if draw(st.booleans()):
        spec["name"] = draw(text("Renamed"))
    if draw(st.booleans()):
        spec["ending_before"] = ts(start + timedelta(days=draw(st.integers(300, 900)), minutes=draw(st.integers(0, 1439))))
    if draw(st.booleans()):
        spec["net_payment_terms_days"] = Decimal(45)
    if draw(st.booleans()):
        spec["custom_fields"] = draw(custom_fields)
    # remove archivable items (not commits an override names)
    for name in ARCHIVABLE:
        items = spec.get(name, [])
        named = _named_commits(spec) if name == "commits" else set()
        for item in list(items):
            if item["key"] not in named and draw(st.integers(0, 3)) == 0:
                items.remove(item)
    # change items in place
    for c in spec.get("commits", []) + spec.get("credits", []):
        if draw(st.booleans()):
            continue
        change = draw(st.sampled_from(["name", "priority", "rollover", "access", "invoice", "scope"]))
        if change == "name":
            c["name"] = draw(text("Changed"))
        elif change == "priority":
            c["priority"] = draw(priorities)
        elif change == "rollover":
            c["rollover_fraction"] = draw(fractions)
        elif change == "access" and c.get("type") != "POSTPAID":
            items = c["access_schedule"]["schedule_items"]
            if len(items) > 1 and draw(st.booleans()):
                items.pop(draw(st.integers(0, len(items) - 1)))
            else:
                _add_distinct(items, draw(access_schedule(terms, 1))["schedule_items"])
        elif change == "invoice" and c.get("type") == "PREPAID" and "schedule_items" in c.get("invoice_schedule", {}):
            _add_distinct(c["invoice_schedule"]["schedule_items"], draw(schedule_items(terms, 1)))
        elif change == "scope" and "specifiers" not in c:
            c.pop("applicable_products", None)
            c["applicable_product_tags"] = draw(tags)
    # schedule items removed (each is sent as remove_schedule_items by its id)
    for c in spec.get("commits", []) + spec.get("credits", []) + spec.get("scheduled_charges", []):
        for schedule in ("access_schedule", "invoice_schedule", "schedule"):
            items = (c.get(schedule) or {}).get("schedule_items") or []
            if len(items) > 1 and draw(st.booleans()):
                items.pop(draw(st.integers(0, len(items) - 1)))
    for o in spec.get("overrides", []):
        if draw(st.booleans()):  # a changed override: removed and added again
            if o.get("multiplier") is not None:
                o["multiplier"] = draw(decimals("0", "3", 4))
            else:
                o["entitled"] = not o.get("entitled", False)
    for c in spec.get("scheduled_charges", []):
        if draw(st.booleans()):
            c["netsuite_sales_order_id"] = draw(identifiers)
        if "schedule_items" in c["schedule"] and draw(st.booleans()):
            _add_distinct(c["schedule"]["schedule_items"], draw(schedule_items(terms, 1)))
    for name in ("recurring_commits", "recurring_credits"):
        for r in spec.get(name, []):
            change = draw(st.sampled_from(["none", "quantity", "price", "end", "rate_type"]))
            if change == "quantity" and "quantity" in r["access_amount"]:
                r["access_amount"]["quantity"] = draw(quantities)
            elif change == "price":
                r["access_amount"]["unit_price"] = draw(cents)
            elif change == "end":
                r["ending_before"] = ts(datetime.strptime(r["starting_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                                        + timedelta(days=draw(st.integers(30, 500))))
            elif change == "rate_type":
                r["rate_type"] = draw(st.sampled_from(["COMMIT_RATE", "LIST_RATE"]))
    for s in spec.get("subscriptions", []):
        sub_start = datetime.strptime(s["starting_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        change = draw(st.sampled_from(["none", "end", "quantity", "seats"]))
        seat_based = s.get("quantity_management_mode") == "SEAT_BASED"
        if change == "end":
            s["ending_before"] = ts(sub_start + timedelta(days=draw(st.integers(30, 500)), minutes=7))
        elif change == "quantity" and not seat_based:
            s.setdefault("quantity_updates", []).append({"starting_at": ts(draw(instant(sub_start + timedelta(days=100), 30))),
                                                         "quantity": draw(st.integers(1, 30))})
        elif change == "seats" and seat_based:
            s.setdefault("seat_updates", {}).setdefault("remove_seat_ids", []).append(
                {"seat_ids": ["u1"], "starting_at": ts(draw(instant(sub_start + timedelta(days=100), 30)))})
    # add items (new keys), possibly an override naming a commit added now
    if draw(st.booleans()):
        spec.setdefault("commits", []).append(draw(commit(draw(st.sampled_from(NEW_KEYS)), terms)))
    if draw(st.booleans()):
        spec.setdefault("credits", []).append(draw(credit("epsilon", terms)))
    if draw(st.booleans()):
        spec.setdefault("scheduled_charges", []).append(draw(scheduled_charge("epsilon", terms)))
    if draw(st.booleans()):
        spec.setdefault("discounts", []).append(draw(scheduled_charge("epsilon", terms)))
    if draw(st.booleans()):
        spec.setdefault("professional_services", []).append(draw(professional_service("epsilon", terms)))
    if terms.subscription_rates() and draw(st.booleans()):
        sub = draw(subscription("epsilon", terms))
        spec.setdefault("subscriptions", []).append(sub)
        if draw(st.booleans()):
            spec.setdefault("recurring_credits", []).append(draw(recurring("epsilon", terms, [sub], False)))
    if draw(st.booleans()):
        spec.setdefault("recurring_commits", []).append(draw(recurring("zeta", terms, [], True)))
    if draw(st.booleans()):
        commit_keys = [c["key"] for c in spec.get("commits", [])]
        recurring_keys = [c["key"] for c in spec.get("recurring_commits", [])]
        spec.setdefault("overrides", []).append(draw(override("zeta", terms, explicit, commit_keys, recurring_keys)))
    # usage filter: a new one from a later time
    if draw(st.booleans()):
        current = (spec.get("usage_filter") or {}).get("starting_at", spec["starting_at"])
        later = datetime.strptime(current, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(days=draw(st.integers(1, 90)), minutes=draw(st.integers(1, 600)))
        spec["usage_filter"] = usage_filter(draw, later)
    for name, prepaid in (("spend_threshold_configuration", False), ("prepaid_balance_threshold_configuration", True)):
        choice = draw(st.sampled_from(["keep", "keep", "change", "remove"]))
        if choice == "change":
            spec[name] = draw(threshold(terms, prepaid))
        elif choice == "remove":
            spec.pop(name, None)
    for name in list(spec):
        if spec[name] == []:
            del spec[name]
    valid("Contract", spec)


@st.composite
def edited(draw, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The account after edits the API can make (each document still valid)."""
    docs = copy.deepcopy(docs)
    catalog = [d for d in docs if d["kind"] in ("BillableMetric", "Product", "RateCard")]
    for d in docs:
        spec = d["spec"]
        if d["kind"] == "BillableMetric" and draw(st.booleans()):
            spec["name"] = draw(text("Renamed metric"))
        elif d["kind"] == "Product" and draw(st.booleans()):
            spec["name"] = draw(text("Renamed product"))
            if draw(st.booleans()):
                spec["tags"] = draw(tags)
            if draw(st.booleans()):
                spec["netsuite_internal_item_id"] = draw(identifiers)
            valid("Product", spec)
        elif d["kind"] == "RateCard":
            if draw(st.booleans()):
                spec["name"] = draw(text("Renamed card"))
            if draw(st.booleans()):
                spec["description"] = draw(text("New about"))
            if draw(st.booleans()):  # a new rate line, or a later period of an open one
                open_rates = [r for r in spec["rates"] if "ending_before" not in r and r["rate_type"] != "SUBSCRIPTION"
                              and not any(o is not r and o["product"] == r["product"] for o in spec["rates"])]
                if open_rates:
                    r = draw(st.sampled_from(open_rates))
                    start = datetime.strptime(r["starting_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                    later = dict(r, starting_at=ts(start + timedelta(days=draw(st.integers(1, 300)), minutes=13)),
                                 price=draw(prices), rate_type="FLAT")
                    later.pop("tiers", None)
                    r["ending_before"] = later["starting_at"]  # adding the later rate ends this one
                    spec["rates"].append(later)
            valid("RateCard", spec)
        elif d["kind"] == "Customer":
            name = d["metadata"]["name"]
            if draw(st.booleans()):
                spec["name"] = draw(text(f"Customer {name} renamed"))
            if draw(st.booleans()):
                spec["ingest_aliases"] = draw(st.lists(st.sampled_from([f"{name}-prod", f"{name}-new"]), min_size=1,
                                                       max_size=2, unique=True))
            if draw(st.booleans()):
                spec["custom_fields"] = draw(custom_fields)
            configs = spec.get("customer_billing_provider_configurations", [])
            original = {c["key"] for c in configs}
            used = {c["spec"].get("billing_provider_configuration", {}).get("billing_provider_configuration")
                    for c in docs if c["kind"] == "Contract" and c["spec"]["customer"] == name}
            for c in list(configs):
                if c["key"] not in used and draw(st.integers(0, 2)) == 0:
                    configs.remove(c)
            missing = sorted(set(PROVIDERS) - original)
            if missing and draw(st.booleans()):
                key = draw(st.sampled_from(missing))
                provider, config = PROVIDERS[key]
                configs.append({"key": key, "billing_provider": provider, "delivery_method": "direct_to_billing_provider",
                                "configuration": {k: f"{v}-{name}-2" for k, v in config.items()}})
            if configs:
                spec["customer_billing_provider_configurations"] = configs
            else:
                spec.pop("customer_billing_provider_configurations", None)
            valid("Customer", spec)
        elif d["kind"] == "Contract" and draw(st.integers(0, 3)):
            draw(edited_contract(d, catalog))
    return docs
