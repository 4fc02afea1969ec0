"""Rules inside one object that a field type cannot express, each with its exact field path.

One checker per kind, registered by kind; each yields (path, message) with paths relative to the
document (starting at "spec").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from . import model as m
from .credit_types import rate_card_conversions
from .errors import Path

Finding = tuple[Path, str]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CHECKERS: dict[str, Callable[[Any], Iterable[Finding]]] = {}


def checker(kind: str):
    def register(fn):
        CHECKERS[kind] = fn
        return fn

    return register


def check_spec(kind: str, spec: m.Spec) -> list[Finding]:
    fn = CHECKERS.get(kind)
    return list(fn(spec)) if fn else []


# Rules that read the raw spec, so that they run even when another field of the same document
# does not validate: every problem of a run is reported at once, not one after the other is fixed.
RAW_CHECKERS: dict[str, Callable[[dict[str, Any]], Iterable[Finding]]] = {}


def raw_checker(kind: str):
    def register(fn):
        RAW_CHECKERS[kind] = fn
        return fn

    return register


def check_raw(kind: str, spec: Any) -> list[Finding]:
    fn = RAW_CHECKERS.get(kind)
    return list(fn(spec)) if fn and isinstance(spec, dict) else []


@raw_checker("Contract")
def _subscription_links(spec: dict[str, Any]) -> Iterator[Finding]:
    """A recurring commit or credit's subscription_config.subscription_id names the temporary_id
    of a subscription of the same contract. Checked only when every subscription's temporary_id
    can be read: a broken subscription must not make a correct link look dangling."""
    subscriptions = spec.get("subscriptions") or []
    if not isinstance(subscriptions, list) or not all(isinstance(s, dict) for s in subscriptions):
        return
    ids = [s.get("temporary_id") for s in subscriptions]
    if not all(i is None or isinstance(i, str) for i in ids):
        return
    known_ids = {i for i in ids if i}
    known = ", ".join(sorted(known_ids)) or "none"
    for name in ("recurring_commits", "recurring_credits"):
        items = spec.get(name)
        for i, rec in enumerate(items if isinstance(items, list) else []):
            config = rec.get("subscription_config") if isinstance(rec, dict) else None
            wanted = config.get("subscription_id") if isinstance(config, dict) else None
            if isinstance(wanted, str) and wanted not in known_ids:
                yield ("spec", name, i, "subscription_config", "subscription_id"), (
                    f"'{wanted}' matches no subscription temporary_id on this contract "
                    f"(temporary_ids: {known}); set temporary_id on the subscription it belongs to"
                )


# --- shared ------------------------------------------------------------------------------------


def _window(path: Path, starting_at: datetime | None, ending_before: datetime | None) -> Iterator[Finding]:
    if starting_at is not None and ending_before is not None and ending_before <= starting_at:
        yield (*path, "ending_before"), (
            f"ending_before ({ending_before:%Y-%m-%dT%H:%M:%SZ}) must be after starting_at "
            f"({starting_at:%Y-%m-%dT%H:%M:%SZ}); time windows are [starting_at, ending_before)"
        )


def _duplicate_keys(path: Path, items: list[Any] | None, what: str = "key") -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items or []):
        key = getattr(item, what)
        if key in seen:
            yield (*path, i, what), (
                f"duplicate {what} '{key}' (also at {path[-1]}[{seen[key]}]); "
                f"each item of {path[-1]} needs its own {what}"
            )
        else:
            seen[key] = i


def _amount_or_unit_price(path: Path, item: Any) -> Iterator[Finding]:
    has_amount = item.amount is not None
    has_pair = item.unit_price is not None or item.quantity is not None
    if has_amount and has_pair:
        yield path, "give either amount, or unit_price and quantity, not both"
    elif not has_amount and (item.unit_price is None or item.quantity is None):
        yield path, "missing the charge: give amount, or both unit_price and quantity"


def _repeated_items(path: Path, items: list[Any]) -> Iterator[Finding]:
    # Schedule items have no key: the planner adds and removes them by content, so two identical
    # items in one schedule could never be told apart (adding a copy would plan nothing).
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        text = item.model_dump_json(exclude_none=True)
        if text in seen:
            yield (*path, "schedule_items", i), (f"schedule item {i} repeats item {seen[text]}; "
                                                 "merge them into one item (add the amounts)")
        else:
            seen[text] = i


def _invoice_schedule(path: Path, schedule: m.InvoiceSchedule | None) -> Iterator[Finding]:
    if schedule is None:
        return
    yield from _repeated_items(path, schedule.schedule_items or [])
    if schedule.schedule_items is None and schedule.recurring_schedule is None:
        yield path, "an invoice schedule needs schedule_items or a recurring_schedule"
    if schedule.schedule_items is not None and schedule.recurring_schedule is not None:
        yield path, "give either schedule_items or recurring_schedule, not both"
    for i, item in enumerate(schedule.schedule_items or []):
        yield from _amount_or_unit_price((*path, "schedule_items", i), item)
    rec = schedule.recurring_schedule
    if rec is not None:
        yield from _window((*path, "recurring_schedule"), rec.starting_at, rec.ending_before)
        yield from _amount_or_unit_price((*path, "recurring_schedule"), rec)


def _access_schedule(path: Path, schedule: m.AccessSchedule) -> Iterator[Finding]:
    yield from _repeated_items(path, schedule.schedule_items)
    for i, item in enumerate(schedule.schedule_items):
        yield from _window((*path, "schedule_items", i), item.starting_at, item.ending_before)


def _scope(path: Path, term: Any) -> Iterator[Finding]:
    if term.specifiers and (term.applicable_products or term.applicable_product_tags):
        yield (*path, "specifiers"), (
            "specifiers cannot be combined with applicable_products/applicable_product_tags; use one"
        )


def _overlaps(path: Path, items: list[tuple[int, Any, datetime, datetime | None]], what: str) -> Iterator[Finding]:
    """items: (index, identity, starting_at, ending_before) — same identity must not overlap."""
    groups: dict[Any, list[tuple[int, datetime, datetime | None]]] = defaultdict(list)
    for index, identity, start, end in items:
        groups[identity].append((index, start, end))
    for entries in groups.values():
        entries.sort(key=lambda e: e[1])
        for (i_prev, _s_prev, e_prev), (i_next, s_next, _e_next) in zip(entries, entries[1:]):
            if e_prev is None or s_next < e_prev:
                yield (*path, i_next, "starting_at"), (
                    f"{what} overlaps {path[-1]}[{i_prev}] in time; end the earlier one "
                    f"(ending_before <= {s_next:%Y-%m-%dT%H:%M:%SZ}) or start this one later"
                )


# --- kinds -------------------------------------------------------------------------------------


@checker("BillableMetric")
def _metric(spec: m.BillableMetricSpec) -> Iterator[Finding]:
    base: Path = ("spec",)
    if spec.sql is not None:
        for name in ("aggregation_type", "aggregation_key", "event_type_filter", "property_filters", "group_keys"):
            if getattr(spec, name) is not None:
                yield (*base, name), f"{name} cannot be combined with sql; a SQL metric defines it in the query"
        return
    if spec.aggregation_type is None:
        yield base, "missing required field aggregation_type (COUNT, SUM, MAX, UNIQUE, LATEST) or sql"
    elif spec.aggregation_type != "COUNT" and not spec.aggregation_key:
        yield (*base, "aggregation_type"), (
            f"{spec.aggregation_type} needs aggregation_key: the event property to aggregate"
        )
    for i, f in enumerate(spec.property_filters or []):
        if f.exists is False and (f.in_values or f.not_in_values):
            yield (*base, "property_filters", i), "exists: false cannot be combined with in_values/not_in_values"


@checker("Product")
def _product(spec: m.ProductSpec) -> Iterator[Finding]:
    base: Path = ("spec",)
    if spec.type == "USAGE" and not spec.billable_metric:
        yield base, "a USAGE product needs billable_metric: the key of the BillableMetric it is priced on"
    if spec.type != "USAGE" and spec.billable_metric:
        yield (*base, "billable_metric"), f"billable_metric only applies to USAGE products, not {spec.type}"
    if spec.type == "COMPOSITE" and not (spec.composite_products or spec.composite_tags):
        yield base, "a COMPOSITE product needs composite_products or composite_tags"


@checker("RateCard")
def _rate_card(spec: m.RateCardSpec) -> Iterator[Finding]:
    base: Path = ("spec",)
    rates = spec.rates or []
    for i, rate in enumerate(rates):
        path = (*base, "rates", i)
        yield from _window(path, rate.starting_at, rate.ending_before)
        if rate.rate_type in ("FLAT", "SUBSCRIPTION", "PERCENTAGE") and rate.price is None:
            yield path, f"a {rate.rate_type} rate needs price"
        if rate.rate_type in ("TIERED", "TIERED_PERCENTAGE"):
            if not rate.tiers:
                yield path, f"a {rate.rate_type} rate needs tiers"
            else:
                yield from _tiers((*path, "tiers"), rate.tiers)
        elif rate.tiers:
            yield (*path, "tiers"), f"tiers only apply to TIERED rates, not {rate.rate_type}"
        if rate.rate_type == "PERCENTAGE" and rate.price is not None and rate.price > 1:
            yield (*path, "price"), "a PERCENTAGE rate's price is a fraction between 0 and 1 (0.1 = 10%)"
        if rate.rate_type == "SUBSCRIPTION" and rate.billing_frequency is None:
            yield path, "a SUBSCRIPTION rate needs billing_frequency (MONTHLY, QUARTERLY, ANNUAL, WEEKLY)"
        if rate.is_prorated is False:
            yield (*path, "is_prorated"), "is_prorated must be true when given (the API accepts only true)"
    yield from rate_card_conversions(base, spec)
    yield from _overlaps(
        (*base, "rates"),
        [
            (i, (r.product, tuple(sorted((r.pricing_group_values or {}).items())), r.billing_frequency),
             r.starting_at, r.ending_before)
            for i, r in enumerate(rates)
        ],
        "this rate (same product, pricing_group_values and billing_frequency)",
    )
    aliases = spec.aliases or []
    for i, alias in enumerate(aliases):
        yield from _window((*base, "aliases", i), alias.starting_at, alias.ending_before)
    yield from _overlaps(
        (*base, "aliases"),
        [(i, a.name, a.starting_at or _EPOCH, a.ending_before) for i, a in enumerate(aliases)],
        "this alias",
    )


def _tiers(path: Path, tiers: list[Any]) -> Iterator[Finding]:
    for i, tier in enumerate(tiers):
        if i < len(tiers) - 1 and tier.size is None:
            yield (*path, i, "size"), "every tier but the last needs size (the units it covers)"
        if i == len(tiers) - 1 and tier.size is not None and len(tiers) > 1:
            yield (*path, i, "size"), "the last tier is open-ended; remove its size"


@checker("Customer")
def _customer(spec: m.CustomerSpec) -> Iterator[Finding]:
    base: Path = ("spec",)
    seen: dict[str, int] = {}
    for i, alias in enumerate(spec.ingest_aliases or []):
        if alias in seen:
            yield (*base, "ingest_aliases", i), f"duplicate ingest alias '{alias}' (also at ingest_aliases[{seen[alias]}])"
        seen.setdefault(alias, i)
    configs = spec.customer_billing_provider_configurations or []
    yield from _duplicate_keys((*base, "customer_billing_provider_configurations"), configs)
    for i, config in enumerate(configs):
        if config.delivery_method is None and config.delivery_method_id is None:
            yield (*base, "customer_billing_provider_configurations", i), (
                "needs delivery_method (e.g. direct_to_billing_provider) or delivery_method_id"
            )
    yield from _duplicate_keys((*base, "customer_revenue_system_configurations"),
                               spec.customer_revenue_system_configurations)


@checker("Contract")
def _contract(spec: m.ContractSpec) -> Iterator[Finding]:
    base: Path = ("spec",)
    yield from _window(base, spec.starting_at, spec.ending_before)
    if spec.rate_card and spec.rate_card_alias:
        yield (*base, "rate_card_alias"), "give either rate_card or rate_card_alias, not both"
    for name in m.ContractSpec.KEYED_LISTS:
        yield from _duplicate_keys((*base, name), getattr(spec, name))

    for i, commit in enumerate(spec.commits or []):
        path = (*base, "commits", i)
        yield from _access_schedule((*path, "access_schedule"), commit.access_schedule)
        yield from _invoice_schedule((*path, "invoice_schedule"), commit.invoice_schedule)
        yield from _scope(path, commit)
        if commit.type == "POSTPAID":
            if len(commit.access_schedule.schedule_items) != 1:
                yield (*path, "access_schedule", "schedule_items"), "a POSTPAID commit has exactly one access schedule item"
            items = commit.invoice_schedule.schedule_items if commit.invoice_schedule else None
            if not items or len(items) != 1:
                yield (*path, "invoice_schedule") if commit.invoice_schedule else path, (
                    "a POSTPAID commit needs an invoice_schedule with exactly one schedule item (the true-up date)"
                )
    for i, credit in enumerate(spec.credits or []):
        path = (*base, "credits", i)
        yield from _access_schedule((*path, "access_schedule"), credit.access_schedule)
        yield from _scope(path, credit)
    for name in ("scheduled_charges", "discounts"):
        for i, charge in enumerate(getattr(spec, name) or []):
            yield from _invoice_schedule((*base, name, i, "schedule"), charge.schedule)

    yield from _overrides(base, spec)
    yield from _subscriptions(base, spec)

    uss = spec.usage_statement_schedule
    if uss is not None and uss.day == "CUSTOM_DATE" and uss.billing_anchor_date is None:
        yield (*base, "usage_statement_schedule"), "day CUSTOM_DATE needs billing_anchor_date"
    bpc = spec.billing_provider_configuration
    if bpc is not None:
        by_key = bpc.billing_provider_configuration is not None
        by_pair = bpc.billing_provider is not None or bpc.delivery_method is not None
        if by_key == by_pair or (by_pair and (bpc.billing_provider is None or bpc.delivery_method is None)):
            yield (*base, "billing_provider_configuration"), (
                "give either billing_provider_configuration (the key of one of the customer's "
                "configurations) or both billing_provider and delivery_method"
            )


def _overrides(base: Path, spec: m.ContractSpec) -> Iterator[Finding]:
    explicit = spec.multiplier_override_prioritization == "EXPLICIT"
    for i, o in enumerate(spec.overrides or []):
        path = (*base, "overrides", i)
        yield from _window(path, o.starting_at, o.ending_before)
        if o.override_specifiers and (o.product or o.applicable_product_tags):
            yield (*path, "override_specifiers"), (
                "override_specifiers cannot be combined with product/applicable_product_tags; use one"
            )
        if not (o.override_specifiers or o.product or o.applicable_product_tags):
            yield path, "an override needs a target: product, applicable_product_tags or override_specifiers"
        if o.type == "MULTIPLIER" and o.multiplier is None:
            yield path, "a MULTIPLIER override needs multiplier (0.95 = 5% off)"
        if o.type == "OVERWRITE" and o.overwrite_rate is None:
            yield path, "an OVERWRITE override needs overwrite_rate"
        if o.type == "TIERED":
            if not o.tiers:
                yield path, "a TIERED override needs tiers"
            else:
                yield from _tiers((*path, "tiers"), o.tiers)
            if o.priority is None:
                yield path, "a TIERED override needs priority"
            if not explicit:
                yield (*path, "type"), (
                    "TIERED overrides need multiplier_override_prioritization: EXPLICIT on the contract"
                )
        if o.multiplier is not None and o.type not in ("MULTIPLIER", None):
            yield (*path, "multiplier"), f"multiplier only applies to MULTIPLIER overrides, not {o.type}"
        if o.type is None and o.multiplier is not None:
            yield (*path, "multiplier"), "set type: MULTIPLIER to apply a multiplier"
        if explicit and o.type == "MULTIPLIER" and o.priority is None:
            yield path, "with multiplier_override_prioritization EXPLICIT every multiplier override needs priority"
        if o.priority is not None and o.priority <= 0:
            yield (*path, "priority"), "priority must be greater than 0"
        if o.target is not None and not o.is_commit_specific:
            yield (*path, "target"), "target only applies with is_commit_specific: true"


def _subscriptions(base: Path, spec: m.ContractSpec) -> Iterator[Finding]:
    seat_based: dict[str, bool] = {}
    for i, sub in enumerate(spec.subscriptions or []):
        path = (*base, "subscriptions", i)
        mode = sub.quantity_management_mode or "QUANTITY_ONLY"
        if sub.temporary_id:
            seat_based[sub.temporary_id] = mode == "SEAT_BASED"
        yield from _window(path, sub.starting_at, sub.ending_before)
        if mode == "QUANTITY_ONLY" and sub.initial_quantity is None:
            yield path, "a QUANTITY_ONLY subscription needs initial_quantity"
        if mode == "SEAT_BASED":
            if sub.seat_config is None:
                yield path, "a SEAT_BASED subscription needs seat_config {initial_seat_ids, seat_group_key}"
            if sub.initial_quantity is not None:
                yield (*path, "initial_quantity"), (
                    "a SEAT_BASED subscription takes its quantity from seat_config; remove initial_quantity"
                )
        elif sub.seat_config is not None:
            yield (*path, "seat_config"), "seat_config needs quantity_management_mode: SEAT_BASED"
        if (sub.proration.invoice_behavior == "BILL_IMMEDIATELY" and sub.collection_schedule != "ADVANCE"):
            yield (*path, "proration", "invoice_behavior"), "BILL_IMMEDIATELY needs collection_schedule ADVANCE"
        for j, update in enumerate(sub.quantity_updates or []):
            if (update.quantity is None) == (update.quantity_delta is None):
                yield (*path, "quantity_updates", j), "give exactly one of quantity or quantity_delta"
            elif update.quantity_delta is not None and update.quantity_delta == 0:
                yield (*path, "quantity_updates", j, "quantity_delta"), "quantity_delta must not be 0"
    for name in ("recurring_commits", "recurring_credits"):
        for i, rec in enumerate(getattr(spec, name) or []):
            path = (*base, name, i)
            yield from _window(path, rec.starting_at, rec.ending_before)
            yield from _scope(path, rec)
            config = rec.subscription_config
            if config is None:
                if rec.access_amount.quantity is None:
                    yield (*path, "access_amount"), "access_amount needs quantity unless the credit is linked to a subscription"
                continue
            if config.subscription_id not in seat_based:
                continue  # reported by _subscription_links, which runs even when the model does not
            if config.allocation == "INDIVIDUAL" and not seat_based[config.subscription_id]:
                yield (*path, "subscription_config", "allocation"), (
                    "allocation INDIVIDUAL needs a SEAT_BASED subscription (quantity_management_mode: SEAT_BASED)"
                )

