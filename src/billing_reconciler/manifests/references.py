"""Checks across objects, on the canonical form: unique keys, references that resolve.

Works on plain dicts so that it runs the same on freshly validated and on cached manifests.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from .document import Manifest
from .errors import Path, PendingProblem

# Where each kind points at other objects by key: (field pattern, target kind).
# "[*]" walks every item of a list.
REFERENCES: dict[str, list[tuple[str, str]]] = {
    "Product": [
        ("billable_metric", "BillableMetric"),
        ("composite_products[*]", "Product"),
    ],
    "RateCard": [("rates[*].product", "Product")],
    "Contract": [
        ("customer", "Customer"),
        ("rate_card", "RateCard"),
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


def walk(obj: Any, pattern: str) -> Iterator[tuple[Path, Any]]:
    """Yield (path, value) for every value matching a dotted pattern with [*] list steps."""
    parts: list[str | None] = []
    for piece in pattern.split("."):
        while piece.endswith("[*]"):
            piece = piece[:-3]
            parts.append(piece)
            parts.append(None)
            piece = ""
        if piece:
            parts.append(piece)
    yield from _walk(obj, parts, ())


def _walk(obj: Any, parts: list[str | None], path: Path) -> Iterator[tuple[Path, Any]]:
    if not parts:
        yield path, obj
        return
    head, rest = parts[0], parts[1:]
    if head is None:
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                yield from _walk(item, rest, (*path, i))
    elif isinstance(obj, dict) and head in obj:
        yield from _walk(obj[head], rest, (*path, head))


def closest(name: str, candidates: list[str] | set[str]) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def check_references(manifests: list[Manifest]) -> list[PendingProblem]:
    problems: list[PendingProblem] = []
    by_kind: dict[str, dict[str, Manifest]] = {}
    for doc in manifests:
        seen = by_kind.setdefault(doc.kind, {})
        if doc.name in seen:
            first = seen[doc.name]
            problems.append(doc.problem(
                ("metadata", "name"),
                f"duplicate key: {doc.address} is also defined in {first.file} (document {first.index + 1}); "
                "keys must be unique per kind — rename one",
            ))
        else:
            seen[doc.name] = doc

    for doc in manifests:
        for pattern, target in REFERENCES.get(doc.kind, []):
            keys = by_kind.get(target, {})
            for path, value in walk(doc.spec, pattern):
                if value not in keys:
                    problems.append(doc.problem(
                        ("spec", *path),
                        f"{target}/{value} does not exist{closest(value, set(keys))}",
                    ))

    problems.extend(_check_aliases(manifests, by_kind))
    problems.extend(_check_contract_links(by_kind))
    problems.extend(_check_group_keys(by_kind))
    return problems


def _check_aliases(manifests: list[Manifest], by_kind: dict[str, dict[str, Manifest]]) -> Iterator[PendingProblem]:
    owners: dict[str, str] = {}
    for doc in by_kind.get("Customer", {}).values():
        for i, alias in enumerate(doc.spec.get("ingest_aliases", [])):
            if alias in owners and owners[alias] != doc.name:
                yield doc.problem(
                    ("spec", "ingest_aliases", i),
                    f"ingest alias '{alias}' is also used by Customer/{owners[alias]}; "
                    "an alias identifies one customer — remove it from one of them",
                )
            owners.setdefault(alias, doc.name)
    rate_card_aliases = {
        a["name"] for card in by_kind.get("RateCard", {}).values() for a in card.spec.get("aliases", [])
    }
    for doc in by_kind.get("Contract", {}).values():
        alias = doc.spec.get("rate_card_alias")
        if alias is not None and alias not in rate_card_aliases:
            yield doc.problem(("spec", "rate_card_alias"),
                              f"no RateCard has alias '{alias}'{closest(alias, rate_card_aliases)}")


def _check_contract_links(by_kind: dict[str, dict[str, Manifest]]) -> Iterator[PendingProblem]:
    customers = by_kind.get("Customer", {})
    cards = by_kind.get("RateCard", {})
    for doc in by_kind.get("Contract", {}).values():
        spec = doc.spec
        for pattern, lists in CONTRACT_ITEM_REFERENCES:
            keys = {item["key"] for name in lists for item in spec.get(name, [])}
            for path, value in walk(spec, pattern):
                if value not in keys:
                    yield doc.problem(("spec", *path),
                                      f"no {' or '.join(lists)} item has key '{value}' on this contract{closest(value, keys)}")
        customer = customers.get(spec.get("customer"))
        bpc_key = spec.get("billing_provider_configuration", {}).get("billing_provider_configuration")
        if customer is not None and bpc_key is not None:
            keys = {c["key"] for c in customer.spec.get("customer_billing_provider_configurations", [])}
            if bpc_key not in keys:
                yield doc.problem(
                    ("spec", "billing_provider_configuration", "billing_provider_configuration"),
                    f"Customer/{customer.name} has no billing provider configuration '{bpc_key}'{closest(bpc_key, keys)}",
                )
        card = cards.get(spec.get("rate_card"))
        if card is not None:
            subscription_rates = {
                (r["product"], r.get("billing_frequency"))
                for r in card.spec.get("rates", []) if r.get("rate_type") == "SUBSCRIPTION"
            }
            for i, sub in enumerate(spec.get("subscriptions", [])):
                rate = sub.get("subscription_rate", {})
                pair = (rate.get("product"), rate.get("billing_frequency"))
                if pair[0] is not None and pair not in subscription_rates:
                    yield doc.problem(
                        ("spec", "subscriptions", i, "subscription_rate"),
                        f"RateCard/{card.name} has no SUBSCRIPTION rate for product {pair[0]} billed {pair[1]}; "
                        "add that rate to the card or pick one it has",
                    )


def _check_group_keys(by_kind: dict[str, dict[str, Manifest]]) -> Iterator[PendingProblem]:
    metrics = by_kind.get("BillableMetric", {})
    for doc in by_kind.get("Product", {}).values():
        metric = metrics.get(doc.spec.get("billable_metric"))
        if metric is None or "sql" in metric.spec:
            continue
        wanted = set(doc.spec.get("pricing_group_key", [])) | set(doc.spec.get("presentation_group_key", []))
        if not wanted:
            continue
        compound = [set(keys) for keys in metric.spec.get("group_keys", [])]
        if not any(wanted <= keys for keys in compound):
            yield doc.problem(
                ("spec", "pricing_group_key" if "pricing_group_key" in doc.spec else "presentation_group_key"),
                f"group keys {sorted(wanted)} must together be one group_keys entry of BillableMetric/{metric.name} "
                f"(it has {metric.spec.get('group_keys', [])}); add [{', '.join(sorted(wanted))}] to its group_keys",
            )
