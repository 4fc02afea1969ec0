"""The engine's input: the billing objects as plain specs, plus each contract's usage-filter history.

A `BillingState` is a value. It is built from loaded manifests (what a plan wants) or from a store
snapshot (what is applied), so `plan --usage` can rate the same events against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("BillableMetric", "Product", "RateCard", "Customer", "Contract")


@dataclass(frozen=True)
class UsageFilterPeriod:
    group_key: str
    group_values: frozenset[str]
    starting_at: str  # canonical timestamp


@dataclass
class BillingState:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Backend ids, so events naming a customer by its remote id are attributed.
    customer_remote_ids: dict[str, str] = field(default_factory=dict)  # remote id -> key
    # set_usage_filter is append-only: each filter applies from its starting_at, oldest first.
    usage_filters: dict[str, list[UsageFilterPeriod]] = field(default_factory=dict)
    # Per contract: the professional-services invoices scheduled for it (scheduleProServicesInvoice
    # bodies, keys for ids; rating.pro_services). Nothing records them yet: empty unless given.
    pro_service_invoices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_specs(cls, specs: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   usage_filter_history: Mapping[str, list[Mapping[str, Any]]] | None = None,
                   remote_ids: Mapping[str, str] | None = None,
                   pro_service_invoices: Mapping[str, list[dict[str, Any]]] | None = None) -> BillingState:
        """From {kind: {key: spec}}; a contract without history uses its own usage_filter."""
        state = cls(
            metrics=dict(specs.get("BillableMetric", {})),
            products=dict(specs.get("Product", {})),
            rate_cards=dict(specs.get("RateCard", {})),
            customers=dict(specs.get("Customer", {})),
            contracts=dict(specs.get("Contract", {})),
            customer_remote_ids=dict(remote_ids or {}),
            pro_service_invoices={k: list(v) for k, v in (pro_service_invoices or {}).items()},
        )
        history = usage_filter_history or {}
        for key, contract in state.contracts.items():
            entries = history.get(key)
            if entries is None:
                uf = contract.get("usage_filter")
                entries = [] if not uf else [{**uf, "starting_at": uf.get("starting_at", contract["starting_at"])}]
            state.usage_filters[key] = sorted(
                (UsageFilterPeriod(e["group_key"], frozenset(e["group_values"]),
                                   e.get("starting_at") or contract["starting_at"]) for e in entries),
                key=lambda p: p.starting_at)
        return state

    @classmethod
    def from_manifests(cls, manifests: Iterable[Any]) -> BillingState:
        specs: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for m in manifests:
            specs.setdefault(m.kind, {})[m.name] = m.spec
        return cls.from_specs(specs)

    @classmethod
    def from_snapshot(cls, snapshot: Any,
                      history_lookup: Callable[[str], list[Mapping[str, Any]]] | None = None) -> BillingState:
        """From a store snapshot (`.objects`: address -> StoredObject); archived objects are left out."""
        specs: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        remote_ids: dict[str, str] = {}
        for obj in snapshot.objects.values():
            if getattr(obj, "archived", False):
                continue
            specs.setdefault(obj.kind, {})[obj.key] = obj.spec
            if obj.kind == "Customer" and getattr(obj, "remote_id", None):
                remote_ids[obj.remote_id] = obj.key
        history = None
        if history_lookup is not None:
            history = {}
            for key in specs["Contract"]:
                entries = history_lookup(key)
                if entries:
                    history[key] = list(entries)
        return cls.from_specs(specs, history, remote_ids)

    # --- look-ups ---------------------------------------------------------------------------

    def customer_refs(self) -> dict[str, str]:
        """Every string an event may name a customer by -> the customer's key.

        Keys and remote ids win over aliases; an alias claimed by two customers goes to the first
        by key (a misconfiguration the validator should report, not the engine).
        """
        refs: dict[str, str] = {}
        for key in sorted(self.customers):
            for alias in self.customers[key].get("ingest_aliases", []):
                refs.setdefault(alias, key)
        refs.update(self.customer_remote_ids)
        refs.update({key: key for key in self.customers})
        return refs

    def contracts_of(self, customer: str) -> list[str]:
        return sorted((k for k, c in self.contracts.items() if c["customer"] == customer),
                      key=lambda k: (self.contracts[k]["starting_at"], k))
