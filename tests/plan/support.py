"""Shared pieces of the library-level reconciler tests (tests/plan, tests/store, tests/apply).

An `Account` is a manifest tree held as Python documents and written as multi-line JSON (which is
YAML), so tests edit it as data and still go through the real loader: discovery, parsing,
validation, references and digests. Stores are real: a SQLite file under tmp_path, or a fresh
PostgreSQL database from the `postgres_url` fixture.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from billing_reconciler import canonical
from billing_reconciler.apply.applier import ApplyResult, apply_plan
from billing_reconciler.apply.backends.embedded import EmbeddedBackend, EmbeddedSession
from billing_reconciler.manifests import load_manifests
from billing_reconciler.plan.operations import Operation, Request
from billing_reconciler.plan.plan import Plan
from billing_reconciler.plan.planner import build_plan
from billing_reconciler.service import current_state
from billing_reconciler.store.store import Store

API_VERSION = "billing-reconciler/v1"
START = "2024-11-01T00:00:00Z"
YEAR_END = "2025-11-01T00:00:00Z"


def doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def catalog() -> list[dict[str, Any]]:
    return [
        doc("BillableMetric", "api-calls", {
            "name": "API calls", "event_type_filter": {"in_values": ["api_call"]},
            "aggregation_type": "COUNT", "group_keys": [["region"]]}),
        doc("Product", "api-calls", {"name": "API calls", "type": "USAGE", "billable_metric": "api-calls",
                                     "tags": ["cloud"]}),
        doc("Product", "prepaid-commit", {"name": "Prepaid commit", "type": "FIXED"}),
        doc("Product", "platform-fee", {"name": "Platform fee", "type": "FIXED"}),
        doc("RateCard", "cloud-2024", {
            "name": "Cloud 2024", "aliases": [{"name": "cloud-standard"}],
            "rates": [{"product": "api-calls", "starting_at": "2024-01-01T00:00:00Z", "entitled": True,
                       "rate_type": "FLAT", "price": 0.5}]}),
    ]


def customer(name: str, *, configs: tuple[str, ...] = ("aws",), display: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": display or f"Customer {name}", "ingest_aliases": [f"{name}-prod"]}
    providers = {"aws": ("aws_marketplace", {"aws_customer_id": f"aws-{name}", "aws_product_code": "widgets",
                                             "aws_region": "us-east-1"}),
                 "stripe": ("stripe", {"stripe_customer_id": f"cus_{name}",
                                       "stripe_collection_method": "charge_automatically"})}
    if configs:
        spec["customer_billing_provider_configurations"] = [
            {"key": key, "billing_provider": providers[key][0], "delivery_method": "direct_to_billing_provider",
             "configuration": providers[key][1]} for key in configs]
    return doc("Customer", name, spec)


def commit(key: str, amount: int = 100000) -> dict[str, Any]:
    return {"key": key, "type": "PREPAID", "product": "prepaid-commit", "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [{"amount": amount, "starting_at": START, "ending_before": YEAR_END}]},
            "invoice_schedule": {"schedule_items": [{"amount": amount, "timestamp": START}]}}


def credit(key: str, amount: int = 5000) -> dict[str, Any]:
    return {"key": key, "product": "prepaid-commit", "applicable_product_tags": ["cloud"],
            "access_schedule": {"schedule_items": [{"amount": amount, "starting_at": START, "ending_before": YEAR_END}]}}


def override(key: str, multiplier: str = "0.95", tag: str = "cloud") -> dict[str, Any]:
    return {"key": key, "starting_at": START, "applicable_product_tags": [tag], "type": "MULTIPLIER",
            "multiplier": float(multiplier)}


def scheduled_charge(key: str, price: int = 100000) -> dict[str, Any]:
    return {"key": key, "product": "platform-fee", "name": f"Charge {key}",
            "schedule": {"recurring_schedule": {"starting_at": START, "ending_before": YEAR_END, "frequency": "QUARTERLY",
                                                "unit_price": price, "quantity": 1, "amount_distribution": "EACH"}}}


def contract(name: str, of: str, *, commits: tuple[str, ...] = ("prepaid",), credits: tuple[str, ...] = (),
             overrides: dict[str, str] | None = None, charges: tuple[str, ...] = ("platform-fee",),
             usage_filter: tuple[str, ...] | None = ("US",), config: str | None = "aws") -> dict[str, Any]:
    spec: dict[str, Any] = {"customer": of, "rate_card": "cloud-2024", "starting_at": START,
                            "usage_statement_schedule": {"frequency": "MONTHLY", "day": "CONTRACT_START"},
                            "scheduled_charges_on_usage_invoices": "ALL"}
    if config:
        spec["billing_provider_configuration"] = {"billing_provider_configuration": config}
    if commits:
        spec["commits"] = [commit(k) for k in commits]
    if credits:
        spec["credits"] = [credit(k) for k in credits]
    overrides = {"cloud-discount": "0.95"} if overrides is None else overrides
    if overrides:
        spec["overrides"] = [override(k, m) for k, m in overrides.items()]
    if charges:
        spec["scheduled_charges"] = [scheduled_charge(k) for k in charges]
    if usage_filter:
        spec["usage_filter"] = {"group_key": "region", "group_values": list(usage_filter), "starting_at": START}
    return doc("Contract", name, spec)


def small_account(customers: int = 2) -> list[dict[str, Any]]:
    docs = catalog()
    for n in range(1, customers + 1):
        docs += [customer(f"c{n}"), contract(f"c{n}-2024", f"c{n}")]
    return docs


class Account:
    """A manifest tree: catalog.yaml (metrics, products, rate cards) and customers.yaml."""

    def __init__(self, root: Path, docs: list[dict[str, Any]]):
        self.root = root
        self.docs = copy.deepcopy(docs)

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    def _index(self, address: str) -> int:
        for i, d in enumerate(self.docs):
            if f"{d['kind']}/{d['metadata']['name']}" == address:
                return i
        raise KeyError(address)

    def spec(self, address: str) -> dict[str, Any]:
        return self.docs[self._index(address)]["spec"]

    def remove(self, *addresses: str) -> None:
        for address in addresses:
            del self.docs[self._index(address)]

    def add(self, *docs: dict[str, Any]) -> None:
        self.docs += [copy.deepcopy(d) for d in docs]

    def files(self) -> dict[str, list[dict[str, Any]]]:
        catalog_kinds = ("BillableMetric", "Product", "RateCard")
        return {"catalog.yaml": [d for d in self.docs if d["kind"] in catalog_kinds],
                "customers.yaml": [d for d in self.docs if d["kind"] not in catalog_kinds]}

    def write(self) -> Account:
        directory = self.manifests_dir
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.yaml"):
            old.unlink()
        for name, docs in self.files().items():
            if docs:
                # Decimals as exact JSON numbers (canonical.dumps), keys in the order written.
                (directory / name).write_text("\n---\n".join(canonical.dumps(d, indent=2, sort_keys=False)
                                                             for d in docs) + "\n")
        return self

    def load(self):
        self.write()
        result = load_manifests(self.manifests_dir)
        assert result.ok, "\n".join(str(p) for p in result.problems)
        return result


def make_plan(store: Store, account: Account, **options: Any) -> Plan:
    result = account.load()
    return build_plan(result.manifests, current_state(store), manifests_digest=result.digest, **options)


class CountingBackend(EmbeddedBackend):
    """The embedded backend (the emulator) with reproducible ids (for snapshots) and an optional
    failure at the n-th request."""

    name = "counting"

    def __init__(self, fail_at: int | None = None, seed: str = "test", validate: bool = True):
        super().__init__(validate=validate)
        self.calls = 0
        self.ids = 0
        self.fail_at = fail_at
        self.seed = seed
        self.requests: list[Request] = []

    def _next_id(self) -> str:
        self.ids += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.seed}/{self.ids}"))

    def session(self, conn):
        emulator = self.emulator(conn)
        emulator.new_id = self._next_id
        return _CountingSession(EmbeddedSession(emulator), self)


class _CountingSession:
    def __init__(self, inner: EmbeddedSession, backend: CountingBackend):
        self.inner, self.backend = inner, backend

    def execute(self, request: Request) -> dict[str, Any]:
        self.backend.calls += 1
        if self.backend.fail_at is not None and self.backend.calls == self.backend.fail_at:
            raise RuntimeError(f"billing API said no to call {self.backend.calls}")
        self.backend.requests.append(request)
        return self.inner.execute(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def apply(store: Store, plan: Plan, backend: Any = None, **options: Any) -> ApplyResult:
    return apply_plan(store, plan, backend or EmbeddedBackend(), actor="tests", **options)


def converge(store: Store, account: Account, backend: Any = None) -> None:
    """Apply what the manifests say, then check the next plan is empty."""
    plan = make_plan(store, account)
    assert not plan.errored, plan.errors
    if plan.has_changes:
        apply(store, plan, backend)
    again = make_plan(store, account)
    assert not again.operations, [(o.op, o.address, o.changes) for o in again.operations]
    assert not again.moves and not again.records, (again.moves, again.records)
    assert not again.drift and not again.errors


def ops_of(plan: Plan, op: str | None = None, address: str | None = None) -> list[Operation]:
    return [o for o in plan.operations if (op is None or o.op == op) and (address is None or o.address == address)]


def only(plan: Plan, op: str, address: str | None = None) -> Operation:
    found = ops_of(plan, op, address)
    assert len(found) == 1, [(o.op, o.address) for o in plan.operations]
    return found[0]


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/state.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str):
    s = Store(store_url)
    s.init()
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path):
    """A SQLite store only (tests that need no PostgreSQL run)."""
    s = Store(f"sqlite:///{tmp_path}/store/state.db")
    s.init()
    yield s
    s.close()


@pytest.fixture
def account(tmp_path: Path) -> Account:
    return Account(tmp_path, small_account(2))
