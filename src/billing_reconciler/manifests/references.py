"""Checks across objects: unique keys per kind, references that resolve, aliases used once.

The checks run on a *view* of each document, made once when its file is parsed and cached with
it: the references it holds (`find_refs`: path, target, key) and the few other fields the checks
read (`VIEW_FIELDS`). A view comes from the canonical spec of a valid document or, best effort,
from the raw spec of one that failed validation, so that its dangling references are reported in
the same run and its key still counts as defined (a typo elsewhere in it does not make every
reference to it dangle). Views are small, so a warm run never rebuilds whole specs. A raw view can
hold anything, hence every read below is type-guarded.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import Path, PendingProblem

# Where each kind points at other objects by key: (field pattern, target kind).
# "[*]" walks every item of a list.
REFERENCES: dict[str, list[tuple[str, str]]] = {
    "Product": [
        ("billable_metric", "BillableMetric"),
        ("composite_products[*]", "Product"),
    ],
    "RateCard": [("rates[*].product", "Product")],
    "Customer": [
        *[(f"{term}[*].{field}", "Product") for term in ("commits", "credits")
          for field in ("product", "applicable_products[*]", "specifiers[*].product")],
        *[(f"{term}[*].applicable_contracts[*]", "Contract") for term in ("commits", "credits")],
        ("commits[*].invoice_contract", "Contract"),
    ],
    "Contract": [
        ("customer", "Customer"),
        ("rate_card", "RateCard"),
        ("transition.from", "Contract"),
        *[
            (f"{term}[*].{field}", "Product")
            for term in ("commits", "credits", "recurring_commits", "recurring_credits")
            for field in ("product", "applicable_products[*]", "specifiers[*].product")
        ],
        ("overrides[*].product", "Product"),
        ("overrides[*].override_specifiers[*].product", "Product"),
        ("scheduled_charges[*].product", "Product"),
        ("discounts[*].product", "Product"),
        ("professional_services[*].product", "Product"),
        ("subscriptions[*].subscription_rate.product", "Product"),
        ("spend_threshold_configuration.commit.product", "Product"),
        ("prepaid_balance_threshold_configuration.commit.product", "Product"),
        ("prepaid_balance_threshold_configuration.commit.applicable_products[*]", "Product"),
    ],
}

# References to keyed items of the same contract.
CONTRACT_ITEM_REFERENCES: list[tuple[str, tuple[str, ...]]] = [
    ("overrides[*].override_specifiers[*].commits[*]", ("commits",)),
    ("overrides[*].override_specifiers[*].recurring_commits[*]", ("recurring_commits",)),
    ("overrides[*].override_specifiers[*].any_commits_or_credits[*]",
     ("commits", "credits", "recurring_commits", "recurring_credits")),
]

# Everything else the checks below read: kept in each document's view.
VIEW_FIELDS: dict[str, list[str]] = {
    "BillableMetric": ["sql", "group_keys"],
    "Product": ["billable_metric", "pricing_group_key", "presentation_group_key"],
    "RateCard": ["aliases", "rates[*].product", "rates[*].rate_type", "rates[*].billing_frequency"],
    "Customer": ["ingest_aliases", "customer_billing_provider_configurations[*].key",
                 "customer_billing_provider_configurations[*].billing_provider",
                 "customer_billing_provider_configurations[*].delivery_method"],
    "Contract": [
        "customer", "rate_card", "starting_at", "ending_before", "rate_card_alias", "transition.from",
        "billing_provider_configuration.billing_provider_configuration",
        "billing_provider_configuration.billing_provider", "billing_provider_configuration.delivery_method",
        "usage_filter.group_key",
        "subscriptions[*].subscription_rate.product", "subscriptions[*].subscription_rate.billing_frequency",
        *[f"{name}[*].key" for name in ("commits", "credits", "recurring_commits", "recurring_credits")],
    ],
}

# A reference found in a document: (path in spec, target kind or the contract's keyed lists, key).
Ref = tuple[Path, "str | tuple[str, ...]", str]


@dataclass(slots=True)
class View:
    kind: str
    name: str
    file: str
    index: int
    spec: dict[str, Any]  # pruned to VIEW_FIELDS
    refs: list[Ref]
    valid: bool  # False: read from the raw spec of a document that failed validation

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    def problem(self, path: Path, message: str) -> PendingProblem:
        return PendingProblem(self.file, self.index, self.address, path, message)


# --- field patterns ---------------------------------------------------------------------------


def _parts(pattern: str) -> list[str | None]:
    """'commits[*].product' -> ['commits', None, 'product'] (None: every list item)."""
    parts: list[str | None] = []
    for piece in pattern.split("."):
        while piece.endswith("[*]"):
            piece = piece[:-3]
            if piece:
                parts.append(piece)
            parts.append(None)
            piece = ""
        if piece:
            parts.append(piece)
    return parts


_PARTS: dict[str, list[str | None]] = {}


def walk(obj: Any, pattern: str) -> Iterator[tuple[Path, Any]]:
    """Yield (path, value) for every value matching a dotted pattern with [*] list steps."""
    parts = _PARTS.get(pattern)
    if parts is None:
        parts = _PARTS[pattern] = _parts(pattern)
    yield from _walk(obj, parts, 0, ())


def _walk(obj: Any, parts: list[str | None], at: int, path: Path) -> Iterator[tuple[Path, Any]]:
    if at == len(parts):
        yield path, obj
        return
    head = parts[at]
    if head is None:
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                yield from _walk(item, parts, at + 1, (*path, i))
    elif isinstance(obj, dict) and head in obj:
        yield from _walk(obj[head], parts, at + 1, (*path, head))


def _tree(patterns: Iterable[str]) -> dict[Any, Any]:
    """Patterns -> nested dict of the fields to keep; None marks 'keep the whole value'."""
    root: dict[Any, Any] = {}
    for pattern in patterns:
        node = root
        parts = _parts(pattern)
        for i, part in enumerate(parts):
            key = "*" if part is None else part
            if i == len(parts) - 1:
                node[key] = None
            else:
                child = node.get(key, {})
                if child is None:  # an ancestor is already kept whole
                    break
                node = node.setdefault(key, child)
    return root


_TREES = {kind: _tree(patterns) for kind, patterns in VIEW_FIELDS.items()}


def _ref_tree(pairs: Iterable[tuple[str, Any]]) -> dict[Any, Any]:
    """(pattern, target) pairs -> nested dict of fields; the key None holds a leaf's target."""
    root: dict[Any, Any] = {}
    for pattern, target in pairs:
        node = root
        for part in _parts(pattern):
            node = node.setdefault("*" if part is None else part, {})
        node[None] = target
    return root


_REF_TREES = {
    kind: _ref_tree([*REFERENCES.get(kind, []), *(CONTRACT_ITEM_REFERENCES if kind == "Contract" else [])])
    for kind in VIEW_FIELDS
}


def find_refs(kind: str, spec: Any) -> list[Ref]:
    """Every reference of a spec, found once when its file is parsed and kept with its view.

    One walk over a tree of all the kind's patterns: walking 25 patterns one by one per
    document was the costliest part of checking references."""
    refs: list[Ref] = []
    tree = _REF_TREES.get(kind)
    if tree is not None:
        _find(spec, tree, (), refs)
    return refs


def _find(obj: Any, node: dict[Any, Any], path: Path, out: list[Ref]) -> None:
    target = node.get(None)
    if target is not None and isinstance(obj, str):
        out.append((path, target, obj))
    if isinstance(obj, dict):
        for key, sub in node.items():
            if key is not None and key != "*" and key in obj:
                _find(obj[key], sub, (*path, key), out)
    elif isinstance(obj, list) and "*" in node:
        sub = node["*"]
        for i, item in enumerate(obj):
            _find(item, sub, (*path, i), out)


def prune(kind: str, spec: Any) -> dict[str, Any]:
    """The view of a spec: only the fields the cross-object checks read, list positions kept."""
    tree = _TREES.get(kind)
    if tree is None or not isinstance(spec, dict):
        return {}
    return _prune(spec, tree)


def _prune(obj: Any, tree: dict[Any, Any] | None) -> Any:
    if tree is None:
        return obj
    if isinstance(obj, list):
        sub = tree.get("*", ...)
        return [_prune(item, sub) for item in obj] if sub is not ... else None
    if isinstance(obj, dict):
        return {key: _prune(obj[key], sub) for key, sub in tree.items() if key != "*" and key in obj}
    return None


# --- checks -----------------------------------------------------------------------------------


def closest(name: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def suggest(name: str, candidates: Iterable[str], what: str) -> str:
    """The closest existing key, else the few that exist, else that there are none."""
    candidates = sorted(candidates)
    hint = closest(name, candidates)
    if hint:
        return hint
    if not candidates:
        return f"; there are no {what}"
    if len(candidates) <= 6:
        return f"; existing: {', '.join(candidates)}"
    return ""


def check_references(views: list[View], complete: bool = True) -> list[PendingProblem]:
    """Problems across documents. `complete` False: some file could not be read at all, so an
    object may exist that no view shows; then a key that is not found is not reported (it would
    be one false error per reference to that file's objects), only everything else."""
    problems: list[PendingProblem] = []
    by_kind: dict[str, dict[str, View]] = {}
    for view in views:
        seen = by_kind.setdefault(view.kind, {})
        if view.name in seen:
            first = seen[view.name]
            problems.append(view.problem(
                ("metadata", "name"),
                f"duplicate key: {view.address} is also defined in {first.file} (document {first.index + 1}); "
                "keys must be unique per kind — rename one",
            ))
        else:
            seen[view.name] = view

    for view in views:
        for path, target, value in view.refs:
            if isinstance(target, str):
                keys = by_kind.get(target, {})
                if value not in keys and complete:
                    problems.append(view.problem(("spec", *path),
                                                 f"{target}/{value} does not exist{suggest(value, keys, target + ' manifests')}"))
                continue
            # A keyed item of the same contract.
            keys = {item["key"] for name in target for item in _dicts(view.spec.get(name))
                    if isinstance(item.get("key"), str)}
            if value not in keys:
                problems.append(view.problem(
                    ("spec", *path),
                    f"no {' or '.join(target)} item has key '{value}' on this contract"
                    f"{suggest(value, keys, 'such items')}"))

    problems.extend(_check_ingest_aliases(by_kind))
    problems.extend(_check_rate_card_aliases(by_kind))
    problems.extend(_check_contract_links(by_kind, complete))
    problems.extend(_check_transitions(by_kind))
    problems.extend(_check_group_keys(by_kind))
    return problems


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The mapping items of a list (a raw view may hold anything)."""
    return [item if isinstance(item, dict) else {} for item in value] if isinstance(value, list) else []


def _time(value: Any) -> datetime | None:
    from ..timeutil import parse_timestamp

    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _ts(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}"


def _period(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "always" if end is None else f"until {_ts(end)}"
    return f"from {_ts(start)} on" if end is None else f"from {_ts(start)} to {_ts(end)}"


def _check_ingest_aliases(by_kind: dict[str, dict[str, View]]) -> Iterator[PendingProblem]:
    owners: dict[str, str] = {}
    for view in by_kind.get("Customer", {}).values():
        aliases = view.spec.get("ingest_aliases")
        for i, alias in enumerate(aliases if isinstance(aliases, list) else []):
            if not isinstance(alias, str):
                continue
            if alias in owners and owners[alias] != view.name:
                yield view.problem(
                    ("spec", "ingest_aliases", i),
                    f"ingest alias '{alias}' is also used by Customer/{owners[alias]}; "
                    "an alias identifies one customer — remove it from one of them",
                )
            owners.setdefault(alias, view.name)


# name -> [(starting_at, ending_before, card view, alias index)]
AliasSpans = dict[str, list[tuple[datetime | None, datetime | None, View, int]]]


def _alias_spans(by_kind: dict[str, dict[str, View]]) -> AliasSpans:
    spans: AliasSpans = {}
    for card in by_kind.get("RateCard", {}).values():
        for i, alias in enumerate(_dicts(card.spec.get("aliases"))):
            name = alias.get("name")
            if isinstance(name, str):
                spans.setdefault(name, []).append(
                    (_time(alias.get("starting_at")), _time(alias.get("ending_before")), card, i))
    return spans


def _overlap(a_start: datetime | None, a_end: datetime | None,
             b_start: datetime | None, b_end: datetime | None) -> bool:
    return (a_end is None or b_start is None or b_start < a_end) and (b_end is None or a_start is None or a_start < b_end)


def _check_rate_card_aliases(by_kind: dict[str, dict[str, View]]) -> Iterator[PendingProblem]:
    """An alias selects one rate card at a time: the same name on two cards must not overlap.

    (Overlaps within one card are reported by rules.py.)"""
    def start_key(span: tuple[datetime | None, datetime | None, View, int]) -> datetime:
        return span[0] or datetime.min.replace(tzinfo=timezone.utc)

    for name, spans in _alias_spans(by_kind).items():
        # Blame the alias that starts later: usually the one just added.
        spans = sorted(spans, key=start_key)
        for j, (start, end, card, i) in enumerate(spans):
            for o_start, o_end, other, _ in spans[:j]:
                if other is not card and _overlap(o_start, o_end, start, end):
                    yield card.problem(
                        ("spec", "aliases", i, "name"),
                        f"alias '{name}' also names {other.address} ({_period(o_start, o_end)}); an alias selects "
                        "one rate card at a time — start this one after the other ends, or rename it",
                    )
                    break


def _check_contract_links(by_kind: dict[str, dict[str, View]], complete: bool) -> Iterator[PendingProblem]:
    customers = by_kind.get("Customer", {})
    cards = by_kind.get("RateCard", {})
    spans = _alias_spans(by_kind)
    for view in by_kind.get("Contract", {}).values():
        spec = view.spec
        if complete:
            yield from _check_rate_card_alias(view, spans)

        customer_key = spec.get("customer")
        customer = customers.get(customer_key) if isinstance(customer_key, str) else None
        bpc = spec.get("billing_provider_configuration")
        bpc_key = bpc.get("billing_provider_configuration") if isinstance(bpc, dict) else None
        if customer is not None and isinstance(bpc_key, str):
            keys = {c["key"] for c in _dicts(customer.spec.get("customer_billing_provider_configurations"))
                    if isinstance(c.get("key"), str)}
            if bpc_key not in keys:
                have = f" (it has: {', '.join(sorted(keys))})" if keys else " (it has none)"
                yield view.problem(
                    ("spec", "billing_provider_configuration", "billing_provider_configuration"),
                    f"Customer/{customer.name} has no billing provider configuration '{bpc_key}'"
                    f"{closest(bpc_key, keys) or have}",
                )

        provider = bpc.get("billing_provider") if isinstance(bpc, dict) else None
        if customer is not None and customer.valid and view.valid and isinstance(provider, str):
            yield from _check_billing_provider(view, customer, provider, bpc.get("delivery_method"))

        card_key = spec.get("rate_card")
        card = cards.get(card_key) if isinstance(card_key, str) else None
        if card is None and isinstance(spec.get("rate_card_alias"), str):
            card = _card_of_alias(spec, spans)
        if card is not None and card.valid and view.valid:
            yield from _check_usage_filter_group_key(view, card, by_kind)
        if card is not None and card.valid and view.valid:  # raw enum spellings are not canonical yet
            subscription_rates = {
                (r.get("product"), r.get("billing_frequency"))
                for r in _dicts(card.spec.get("rates")) if r.get("rate_type") == "SUBSCRIPTION"
            }
            products = by_kind.get("Product", {})
            for i, sub in enumerate(_dicts(spec.get("subscriptions"))):
                rate = sub.get("subscription_rate")
                pair = (rate.get("product"), rate.get("billing_frequency")) if isinstance(rate, dict) else (None, None)
                # A product that does not exist is reported once, as such.
                if pair[0] in products and pair not in subscription_rates:
                    yield view.problem(
                        ("spec", "subscriptions", i, "subscription_rate"),
                        f"RateCard/{card.name} has no SUBSCRIPTION rate for product {pair[0]} billed {pair[1]}; "
                        "add that rate to the card or pick one it has",
                    )


def _check_billing_provider(view: View, customer: View, provider: str, method: Any) -> Iterator[PendingProblem]:
    """The provider + delivery method form names one of the customer's configurations (of an
    active contract: an ended one may have billed through a configuration archived since)."""
    from ..timeutil import utc_now

    end = _time(view.spec.get("ending_before"))
    if end is not None and end <= utc_now():
        return
    configs = _dicts(customer.spec.get("customer_billing_provider_configurations"))
    if any(c.get("billing_provider") == provider and (method is None or c.get("delivery_method") == method)
           for c in configs):
        return
    have = ", ".join(sorted(f"{c.get('key')} ({c.get('billing_provider')}/{c.get('delivery_method')})"
                            for c in configs)) or "none"
    yield view.problem(("spec", "billing_provider_configuration", "billing_provider"),
                       f"Customer/{customer.name} has no billing provider configuration for {provider}"
                       f"{'/' + method if isinstance(method, str) else ''} (it has: {have}); add one to the "
                       "customer, or name one of its configurations by key (billing_provider_configuration)")


def _card_of_alias(spec: dict[str, Any], spans: AliasSpans) -> View | None:
    start = _time(spec.get("starting_at"))
    for s, e, card, _ in spans.get(spec["rate_card_alias"], []):
        if start is not None and (s is None or s <= start) and (e is None or start < e):
            return card
    return None


def _check_usage_filter_group_key(view: View, card: View, by_kind: dict[str, dict[str, View]]) -> Iterator[PendingProblem]:
    """A usage filter routes events by a group key: every metric priced on the contract's rate card
    must have it as a group key (SQL metrics excepted: their events carry it as a property)."""
    uf = view.spec.get("usage_filter")
    group_key = uf.get("group_key") if isinstance(uf, dict) else None
    if not isinstance(group_key, str):
        return
    products, metrics = by_kind.get("Product", {}), by_kind.get("BillableMetric", {})
    lacking = set()
    for rate in _dicts(card.spec.get("rates")):
        product = products.get(rate.get("product")) if isinstance(rate.get("product"), str) else None
        metric_key = product.spec.get("billable_metric") if product is not None else None
        metric = metrics.get(metric_key) if isinstance(metric_key, str) else None
        if metric is None or not metric.valid or "sql" in metric.spec:
            continue
        if not any(group_key in keys for keys in metric.spec.get("group_keys", []) if isinstance(keys, list)):
            lacking.add(metric.address)
    if lacking:
        yield view.problem(("spec", "usage_filter", "group_key"),
                           f"group key '{group_key}' is not a group key of {', '.join(sorted(lacking))} (priced on "
                           f"{card.address}), so their events cannot be routed by this filter; add [{group_key}] "
                           "to their group_keys, or filter by a key they have")


def _check_transitions(by_kind: dict[str, dict[str, View]]) -> Iterator[PendingProblem]:
    """A transition names an earlier contract of the same customer, which it ends at its start;
    a contract is ended by one transition at most. (An unknown key is reported as a dangling
    reference.)"""
    contracts = by_kind.get("Contract", {})
    ended_by: dict[str, View] = {}
    for view in sorted(contracts.values(), key=lambda v: v.name):
        transition = view.spec.get("transition")
        old_key = transition.get("from") if isinstance(transition, dict) else None
        old = contracts.get(old_key) if isinstance(old_key, str) else None
        if old is None:
            continue
        path = ("spec", "transition", "from")
        if old is view:
            yield view.problem(path, "a contract cannot transition from itself; name the contract it replaces")
            continue
        if old.spec.get("customer") != view.spec.get("customer"):
            yield view.problem(path, f"{old.address} belongs to Customer/{old.spec.get('customer')}, not to "
                                     f"Customer/{view.spec.get('customer')}; a transition replaces a contract of "
                                     "the same customer")
            continue
        start, old_start = _time(view.spec.get("starting_at")), _time(old.spec.get("starting_at"))
        if start is not None and old_start is not None and start <= old_start:
            yield view.problem(("spec", "starting_at"),
                               f"the transition from {old.address} ends it at this contract's starting_at "
                               f"({_ts(start)}), which must be after {old.address} starts ({_ts(old_start)})")
            continue
        if old_key in ended_by:
            yield view.problem(path, f"{old.address} is already replaced by {ended_by[old_key].address}; a "
                                     "contract is ended by one transition: chain them (from the newest)")
            continue
        ended_by[old_key] = view


def _check_rate_card_alias(view: View, spans: AliasSpans) -> Iterator[PendingProblem]:
    """rate_card_alias picks the card its alias names on the contract's starting_at."""
    alias = view.spec.get("rate_card_alias")
    if not isinstance(alias, str):
        return
    named = spans.get(alias)
    if not named:
        yield view.problem(("spec", "rate_card_alias"), f"no RateCard has alias '{alias}'{suggest(alias, spans, 'rate card aliases')}")
        return
    start = _time(view.spec.get("starting_at"))
    if start is None:
        return
    if not any((s is None or s <= start) and (e is None or start < e) for s, e, _, _ in named):
        periods = "; ".join(f"{card.address} {_period(s, e)}" for s, e, card, _ in named)
        yield view.problem(
            ("spec", "rate_card_alias"),
            f"alias '{alias}' names no rate card on the contract's starting_at ({_ts(start)}); it names {periods}",
        )


def _check_group_keys(by_kind: dict[str, dict[str, View]]) -> Iterator[PendingProblem]:
    metrics = by_kind.get("BillableMetric", {})
    for view in by_kind.get("Product", {}).values():
        metric_key = view.spec.get("billable_metric")
        metric = metrics.get(metric_key) if isinstance(metric_key, str) else None
        if metric is None or not (metric.valid and view.valid) or "sql" in metric.spec:
            continue
        spec = view.spec
        wanted = set(spec.get("pricing_group_key", [])) | set(spec.get("presentation_group_key", []))
        if not wanted:
            continue
        compound = [set(keys) for keys in metric.spec.get("group_keys", [])]
        if not any(wanted <= keys for keys in compound):
            yield view.problem(
                ("spec", "pricing_group_key" if "pricing_group_key" in spec else "presentation_group_key"),
                f"group keys {sorted(wanted)} must together be one group_keys entry of {metric.address} "
                f"(it has {metric.spec.get('group_keys', [])}); add [{', '.join(sorted(wanted))}] to its group_keys",
            )
