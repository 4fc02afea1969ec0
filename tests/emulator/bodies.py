"""Every request body our plans emit, from every example account and its edits.

Accounts: the shipped example (`manifests/`), the tests' small account (tests/plan/support.py),
the benchmark's generated account (bench/generate_account.py), the bad-input corpus's valid base
(tests/bad_manifests/_base). `examples/` holds CI workflows only, no manifests. Each is planned against an empty
store (creates), applied, then edited step by step so that every update the planner can make is
planned too: edit_contract with its add_/update_/archive_/remove_ keys, set_usage_filter,
add_rates, rate card / product / metric updates, custom fields, billing provider configurations,
archives (--prune) and replace. Placeholders are resolved the way apply resolves them, with ids
made up for the objects created in the same plan, so a body is checked as it is sent.
"""

from __future__ import annotations

import copy
import importlib.util
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing_reconciler import canonical
from billing_reconciler.apply.applier import resolve
from billing_reconciler.manifests import load_manifests
from billing_reconciler.plan.operations import Operation
from billing_reconciler.plan.plan import Plan
from billing_reconciler.store.store import Store
from tests.plan.support import (Account, apply, catalog, commit, contract, credit, customer, doc, make_plan,
                                override, scheduled_charge, small_account)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    """One request as apply sends it, and where it came from."""

    scenario: str
    op: str
    address: str
    method: str
    path: str
    body: Any

    def where(self) -> str:
        return f"{self.scenario}: {self.op} {self.address} ({self.method} {self.path})"


class _MadeUpIds(dict):
    """Any placeholder resolves: a stable UUID derived from its name."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def sent(scenario: str, plan: Plan) -> list[Sent]:
    assert not plan.errors, f"{scenario}: the plan was refused: {[str(e) for e in plan.errors]}"
    out = []
    for op in plan.operations:
        request = resolve(op.request, _MadeUpIds(), NOW)
        out.append(Sent(scenario, op.op, op.address, request.method, request.path, request.body))
    return out


class DataAccount(Account):
    """An Account whose documents may hold Decimals (Account writes them as exact JSON numbers)."""


def account_from(directory: Path, root: Path) -> DataAccount:
    """The manifests under `directory` as documents of a DataAccount under `root`."""
    result = load_manifests(directory)
    assert result.ok, [str(p) for p in result.problems]
    docs = [doc(m.kind, m.name, copy.deepcopy(m.spec), dict(m.labels) or None) for m in result.manifests]
    return DataAccount(root, docs)


Edit = Callable[[Account], None]


def walk(scenario: str, store: Store, account: Account, edits: list[tuple[str, Edit]],
         **plan_options: Any) -> Iterator[Sent]:
    """Plan and apply the account, then each edit in turn: every plan's requests."""
    plan = make_plan(store, account)
    yield from sent(f"{scenario}: create", plan)
    apply(store, plan)
    for label, edit in edits:
        edit(account)
        options = dict(plan_options)
        if label.startswith("prune"):
            options["prune"] = True
        if label.startswith("replace "):
            options["replace"] = (label.split()[1],)
        plan = make_plan(store, account, **options)
        assert plan.operations, f"{scenario}: {label}: the edit planned nothing"
        yield from sent(f"{scenario}: {label}", plan)
        apply(store, plan)
        again = make_plan(store, account, **options)
        assert not again.operations, f"{scenario}: {label}: not converged: {[(o.op, o.address) for o in again.operations]}"


# --- the example account (manifests/) ----------------------------------------------------------

def _example_edits() -> list[tuple[str, Edit]]:
    def widgets(a: Account) -> dict:
        return a.spec("Contract/widgetsexpress-2024")

    def add_override_and_commit(a: Account) -> None:
        spec = widgets(a)
        spec.setdefault("overrides", []).append(
            {"key": "export-discount", "starting_at": "2024-11-01T00:00:00Z", "type": "MULTIPLIER",
             "multiplier": "0.5", "product": "data-export"})
        spec["commits"].append(commit("extra", 5000) | {"applicable_product_tags": ["network"]})
        spec["credits"] = [credit("welcome", 2500)]
        spec["scheduled_charges"].append(
            {"key": "onboarding", "product": "platform-fee", "name": "Onboarding",
             "schedule": {"schedule_items": [{"timestamp": "2024-12-01T00:00:00Z", "unit_price": 25000,
                                              "quantity": 1}]}})

    def update_commit_and_charge(a: Account) -> None:
        spec = widgets(a)
        commit_ = spec["commits"][0]
        commit_["name"] = "Prepaid commit, renamed"
        commit_["access_schedule"]["schedule_items"].append(
            {"amount": 5000, "starting_at": "2025-11-01T00:00:00Z", "ending_before": "2026-11-01T00:00:00Z"})
        commit_["invoice_schedule"]["schedule_items"].append(
            {"timestamp": "2025-11-01T00:00:00Z", "unit_price": 5000, "quantity": 1})
        onboarding = spec["scheduled_charges"][1]
        onboarding["schedule"]["schedule_items"].append({"timestamp": "2025-01-01T00:00:00Z", "amount": 5000})
        onboarding["netsuite_sales_order_id"] = "SO-1001"

    def contract_fields(a: Account) -> None:
        spec = widgets(a)
        spec["name"] = "WidgetsExpress 2024-2026"
        spec["ending_before"] = "2026-11-01T00:00:00Z"
        spec["net_payment_terms_days"] = 45
        spec["custom_fields"] = {"deal_desk_id": "dd-7"}
        spec["usage_filter"] = {"group_key": "region", "group_values": ["US", "EU"],
                                "starting_at": "2025-02-01T00:00:00Z"}

    def thresholds(a: Account) -> None:
        widgets(a)["spend_threshold_configuration"] = {
            "threshold_amount": 50000, "is_enabled": True, "commit": {"product": "prepaid-commit", "name": "Spend"},
            "payment_gate_config": {"payment_gate_type": "STRIPE", "stripe_config": {"payment_type": "INVOICE"}}}
        widgets(a)["prepaid_balance_threshold_configuration"] = {
            "threshold_amount": 1000, "recharge_to_amount": 10000, "is_enabled": True,
            "commit": {"product": "prepaid-commit", "applicable_product_tags": ["cloud"]},
            "payment_gate_config": {"payment_gate_type": "NONE"}}

    def threshold_update(a: Account) -> None:
        widgets(a)["spend_threshold_configuration"]["threshold_amount"] = 60000
        del widgets(a)["prepaid_balance_threshold_configuration"]

    def remove_terms(a: Account) -> None:
        spec = widgets(a)
        spec["commits"] = [c for c in spec["commits"] if c["key"] != "extra"]
        del spec["credits"]
        spec["overrides"] = [o for o in spec["overrides"] if o["key"] not in ("export-discount", "commit-rate")]
        del spec["custom_fields"]

    def customer_fields(a: Account) -> None:
        spec = a.spec("Customer/widgetsexpress")
        spec["name"] = "WidgetsExpress Inc"
        spec["ingest_aliases"] = ["widgets-express-prod"]
        spec["custom_fields"] = {"sfdc_account_id": "sfdc2002", "region": "emea"}
        spec["customer_billing_provider_configurations"].append(
            {"key": "stripe", "billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
             "configuration": {"stripe_customer_id": "cus_widgets", "stripe_collection_method": "send_invoice"}})

    def customer_removals(a: Account) -> None:
        spec = a.spec("Customer/widgetsexpress")
        del spec["custom_fields"]["region"]
        spec["customer_billing_provider_configurations"].pop()

    def subscriptions(a: Account) -> None:
        acme = a.spec("Contract/acme-pro-2025")["subscriptions"][0]
        acme["quantity_updates"] = [{"starting_at": "2025-06-01T00:00:00Z", "quantity": 5},
                                    {"starting_at": "2025-07-01T00:00:00Z", "quantity_delta": -1}]
        acme["ending_before"] = "2026-04-23T00:00:00Z"
        seats = a.spec("Contract/copperworks-seats-2025")["subscriptions"][0]
        seats["seat_updates"] = {
            "add_seat_ids": [{"seat_ids": ["seat4@copperworks.example"], "starting_at": "2025-10-01T00:00:00Z"}],
            "remove_seat_ids": [{"seat_ids": ["seat1@copperworks.example"], "starting_at": "2025-10-01T00:00:00Z"}],
            "add_unassigned_seats": [{"quantity": 2, "starting_at": "2025-10-01T00:00:00Z"}]}

    def new_subscription_and_recurring(a: Account) -> None:
        spec = a.spec("Contract/brightlabs-pool-2025")
        spec["subscriptions"].append(
            {"key": "team-plan", "collection_schedule": "ARREARS", "name": "Team plan",
             "proration": {"is_prorated": False},
             "subscription_rate": {"product": "pro-plan", "billing_frequency": "ANNUAL"},
             "initial_quantity": 1, "temporary_id": "team_plan",
             "quantity_updates": [{"starting_at": "2025-08-01T00:00:00Z", "quantity": 3}]})
        spec["recurring_credits"].append(
            {"key": "team-pool", "product": "seat-credit", "priority": 2, "starting_at": "2025-06-01T00:00:00Z",
             "access_amount": {"unit_price": 500}, "commit_duration": {"value": 1, "unit": "PERIODS"},
             "subscription_config": {"subscription_id": "team_plan", "apply_seat_increase_config": {"is_prorated": True},
                                     "allocation": "POOLED"}})
        spec.setdefault("recurring_commits", []).append(
            {"key": "monthly-commit", "product": "seat-credit", "priority": 5, "starting_at": "2025-06-01T00:00:00Z",
             "access_amount": {"unit_price": 2000, "quantity": 1}, "commit_duration": {"value": 1},
             "recurrence_frequency": "MONTHLY", "invoice_amount": {"unit_price": 2000, "quantity": 1}})

    def recurring_updates(a: Account) -> None:
        spec = a.spec("Contract/brightlabs-pool-2025")
        spec["recurring_credits"][0]["ending_before"] = "2026-06-01T00:00:00Z"
        spec["recurring_commits"][0]["ending_before"] = "2026-06-01T00:00:00Z"
        spec["recurring_commits"][0]["access_amount"]["unit_price"] = 2500
        spec["recurring_commits"][0]["invoice_amount"]["quantity"] = 2

    def more_terms(a: Account) -> None:
        spec = widgets(a)
        spec["credits"] = [credit("goodwill", 1500) | {"priority": 10, "rate_type": "LIST_RATE"}]
        spec["overrides"] += [
            {"key": "export-price", "starting_at": "2025-01-01T00:00:00Z", "type": "OVERWRITE",
             "product": "data-export", "entitled": True,
             "overwrite_rate": {"rate_type": "FLAT", "price": "0.02"}},
            {"key": "commit-rate", "starting_at": "2025-01-01T00:00:00Z", "type": "MULTIPLIER", "multiplier": "0.7",
             "is_commit_specific": True, "priority": 2,
             "override_specifiers": [{"product_tags": ["cloud"], "commits": ["prepaid-2024"]}]}]

    def credit_update(a: Account) -> None:
        spec = widgets(a)["credits"][0]
        spec["priority"] = 20
        spec["access_schedule"]["schedule_items"].append(
            {"amount": 500, "starting_at": "2025-11-01T00:00:00Z", "ending_before": "2026-11-01T00:00:00Z"})

    def catalog_updates(a: Account) -> None:
        a.spec("BillableMetric/api-calls")["name"] = "API calls (all regions)"
        a.spec("Product/api-calls")["name"] = "API calls, renamed"
        a.spec("Product/platform-fee")["name"] = "Platform fee"
        card_key = next(d["metadata"]["name"] for d in a.docs if d["kind"] == "RateCard")
        card = a.spec(f"RateCard/{card_key}")
        card["description"] = "Renamed card"
        rate = dict(card["rates"][0])
        card["rates"][0] = dict(card["rates"][0], ending_before="2026-01-01T00:00:00Z")
        rate["starting_at"] = "2026-01-01T00:00:00Z"
        rate.pop("ending_before", None)
        card["rates"].append(rate)

    def contract_without_config_gets_one(a: Account) -> None:
        a.add(doc("Contract", "widgetsexpress-2026", {
            "customer": "widgetsexpress", "starting_at": "2026-01-01T00:00:00Z",
            "rate_card_alias": widgets(a)["rate_card_alias"], "multiplier_override_prioritization": "EXPLICIT",
            "overrides": [{"key": "volume-tiers", "starting_at": "2026-01-01T00:00:00Z", "type": "TIERED",
                           "priority": 1, "applicable_product_tags": ["cloud"],
                           "tiers": [{"multiplier": "0.9", "size": 1000}, {"multiplier": "0.8"}]}]}))

    def contract_config_added(a: Account) -> None:
        a.spec("Contract/widgetsexpress-2026")["billing_provider_configuration"] = {
            "billing_provider_configuration": "aws"}

    def prune_everything(a: Account) -> None:
        a.docs.clear()

    return [
        ("add override, commit, credit", add_override_and_commit),
        ("update commit and scheduled charge", update_commit_and_charge),
        ("contract name, end, terms, custom fields, usage filter", contract_fields),
        ("add thresholds", thresholds),
        ("update and disable thresholds", threshold_update),
        ("credit, overwrite, tiered and commit-specific overrides", more_terms),
        ("credit priority and access schedule", credit_update),
        ("archive commit and credit, remove overrides", remove_terms),
        ("customer name, aliases, custom fields, billing provider", customer_fields),
        ("customer custom field and billing provider removed", customer_removals),
        ("subscription quantity and seat updates", subscriptions),
        ("new subscription, recurring credit and commit", new_subscription_and_recurring),
        ("recurring commit and credit end", recurring_updates),
        ("metric, product, rate card updates and a new rate", catalog_updates),
        ("a contract without a billing provider configuration", contract_without_config_gets_one),
        ("a contract's billing provider configuration added", contract_config_added),
        ("replace Contract/widgetsexpress-2024",
         lambda a: widgets(a).pop("scheduled_charges_on_usage_invoices")),
        ("prune everything", prune_everything),
    ]


def example_account(store: Store, root: Path) -> Iterator[Sent]:
    account = account_from(ROOT / "manifests", root)
    yield from walk("manifests/", store, account, _example_edits())


# --- the tests' small account (tests/plan/support.py) -----------------------------------------

def _support_edits() -> list[tuple[str, Edit]]:
    def changed_override_and_more(a: Account) -> None:
        spec = a.spec("Contract/c1-2024")
        spec["overrides"][0]["multiplier"] = "0.9"
        spec["overrides"].append(override("network-discount", "0.8", tag="network"))
        spec["scheduled_charges"].append(scheduled_charge("support-fee", 5000))
        spec["commits"].append(commit("extra", 5000))

    def archives(a: Account) -> None:
        spec = a.spec("Contract/c1-2024")
        del spec["commits"]
        del spec["scheduled_charges"]
        a.spec("Contract/c2-2024")["credits"] = [credit("goodwill", 2500)]

    def rate_card(a: Account) -> None:
        card = a.spec("RateCard/cloud-2024")
        card["name"] = "Cloud 2024 (renamed)"
        card["aliases"].append({"name": "cloud-2024-alias"})
        card["rates"][0]["ending_before"] = "2025-06-01T00:00:00Z"
        card["rates"].append({"product": "api-calls", "starting_at": "2025-06-01T00:00:00Z", "entitled": True,
                              "rate_type": "FLAT", "price": "0.45"})

    def customers(a: Account) -> None:
        spec = a.spec("Customer/c1")
        spec["name"] = "Customer one"
        spec["ingest_aliases"] = ["c1-prod", "c1-staging"]
        spec["custom_fields"] = {"tier": "gold"}
        spec["customer_billing_provider_configurations"].append(
            customer("x", configs=("stripe",))["spec"]["customer_billing_provider_configurations"][0])
        a.spec("Contract/c2-2024")["usage_filter"] = {"group_key": "region", "group_values": ["US", "EU"],
                                                      "starting_at": "2025-01-01T00:00:00Z"}

    def customer_balances_and_renewal(a: Account) -> None:
        a.spec("Customer/c1")["commits"] = [{
            "key": "shared", "type": "PREPAID", "product": "prepaid-commit", "priority": 1,
            "invoice_contract": "c1-2024", "applicable_contracts": ["c1-2024"], "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [{"amount": 50000, "starting_at": "2024-11-01T00:00:00Z",
                                                    "ending_before": "2025-11-01T00:00:00Z"}]},
            "invoice_schedule": {"schedule_items": [{"amount": 50000, "timestamp": "2024-11-01T00:00:00Z"}]}}]
        a.spec("Customer/c1")["credits"] = [{
            "key": "goodwill", "product": "prepaid-commit", "priority": 2, "name": "Goodwill",
            "access_schedule": {"schedule_items": [{"amount": 2500, "starting_at": "2024-11-01T00:00:00Z",
                                                    "ending_before": "2025-11-01T00:00:00Z"}]}}]
        renewal = contract("c1-2025", "c1", commits=(), overrides={}, charges=(), usage_filter=None)
        renewal["spec"]["starting_at"] = "2025-06-01T00:00:00Z"
        renewal["spec"]["transition"] = {"from": "c1-2024", "type": "RENEWAL",
                                         "future_invoice_behavior": {"trueup": "REMOVE"}}
        a.add(renewal)

    def removals(a: Account) -> None:
        spec = a.spec("Customer/c1")
        del spec["custom_fields"]
        spec["customer_billing_provider_configurations"].pop()
        del a.spec("Contract/c2-2024")["credits"]

    return [
        ("changed override, added override, charge, commit", changed_override_and_more),
        ("archived commit and charge, added credit", archives),
        ("rate card name, alias and a new rate", rate_card),
        ("customer name, aliases, custom fields, billing provider, usage filter", customers),
        ("customer-level commit and credit, a renewal", customer_balances_and_renewal),
        ("removed custom fields, billing provider, credit", removals),
        ("replace Contract/c2-2024", lambda a: a.spec("Contract/c2-2024").pop("scheduled_charges_on_usage_invoices")),
        ("prune Customer/c2 and its contract", lambda a: a.remove("Contract/c2-2024", "Customer/c2")),
    ]


def support_account(store: Store, root: Path) -> Iterator[Sent]:
    docs = catalog() + [customer("c1"), contract("c1-2024", "c1", credits=("welcome",)),
                        customer("c2", configs=("aws", "stripe")), contract("c2-2024", "c2", config=None)]
    yield from walk("tests/plan/support.py", store, Account(root, docs), _support_edits())
    yield from walk("tests/plan/support.py small_account", _fresh_store(root / "small"),
                    Account(root / "small", small_account(2)), [])


def _fresh_store(root: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{root}/state.db")
    store.init()
    return store


# --- the benchmark's generated account (bench/generate_account.py) ----------------------------

def generate_account_module():
    spec = importlib.util.spec_from_file_location("generate_account", ROOT / "bench" / "generate_account.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_account(store: Store, root: Path, customers: int = 3) -> Iterator[Sent]:
    generate_account_module().generate(customers, root / "generated")
    account = account_from(root / "generated", root / "generated-copy")

    def edit(a: Account) -> None:
        spec = a.spec("Contract/customer-00000-2024")
        spec["overrides"][0]["multiplier"] = "0.9"
        a.spec("Customer/customer-00001")["custom_fields"] = {"sfdc_account_id": "sfdc-new"}

    yield from walk("bench/generate_account.py", store, account, [("override and custom field", edit)])


def bad_manifests_base(store: Store, root: Path) -> Iterator[Sent]:
    """The minimal valid account the bad-input corpus is made from (tests/bad_manifests/_base)."""
    account = account_from(ROOT / "tests" / "bad_manifests" / "_base", root)
    yield from walk("tests/bad_manifests/_base", store, account, [])


def every_body(root: Path) -> list[Sent]:
    """All of the above, each account on its own SQLite store under `root`."""
    out: list[Sent] = []
    for name, scenario in (("example", example_account), ("support", support_account),
                           ("generated", generated_account), ("bad-manifests-base", bad_manifests_base)):
        out += scenario(_fresh_store(root / name), root / name)
    return out
