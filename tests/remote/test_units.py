"""Pieces of the remote apply that need no server: Retry-After, which requests may be re-sent,
uniqueness keys, the emulator's 409 on a re-used uniqueness key, the API host a plan names."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from billing_reconciler.apply.backends.metronome import (
    MetronomeBackend, RetryPolicy, api_host, parse_retry_after, repeatable)
from billing_reconciler.apply.journal import uniqueness_key
from billing_reconciler.emulator.engine import Emulator
from billing_reconciler.emulator.refusals import RequestRefused
from billing_reconciler.plan.operations import Request
from billing_reconciler.plan.readers import Keys, read_contract


def test_retry_after_seconds_and_http_date():
    # Mutation: ignoring Retry-After (or reading only one of its two forms) fails here.
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 28 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 30
    # The policy waits what the server asked, not its own backoff (0.2 s * 2**0 with jitter <= 0.2).
    assert RetryPolicy().delay(0, "2") == 2.0
    assert RetryPolicy().delay(0, None) <= 0.2


def test_only_safe_requests_are_repeatable():
    # Mutation: re-sending a customer create after a lost answer makes a duplicate customer.
    assert not repeatable(Request("POST", "/v1/customers", {"name": "a"}))
    assert not repeatable(Request("POST", "/v1/contract-pricing/rate-cards/addRates", {"rate_card_id": "x"}))
    assert not repeatable(Request("POST", "/v1/contracts/create", {"customer_id": "c"}))
    # With a uniqueness key a re-send is refused by the API (409) instead of applied twice.
    assert repeatable(Request("POST", "/v1/contracts/create", {"customer_id": "c", "uniqueness_key": "k"}))
    assert repeatable(Request("POST", "/v1/customers/c/setName", {"name": "a"}))
    assert repeatable(Request("PUT", "/v1/billable-metrics/m", {"name": "a"}))


def test_uniqueness_key_is_lineage_serial_and_index():
    key = uniqueness_key("lin", 4, 2)
    assert key == uniqueness_key("lin", 4, 2)  # a re-send of the same operation carries the same key
    assert len({key, uniqueness_key("lin", 5, 2), uniqueness_key("lin", 4, 3), uniqueness_key("other", 4, 2)}) == 4


def test_api_host_never_carries_credentials():
    assert api_host("http://user:secret@127.0.0.1:8787/") == "http://127.0.0.1:8787"
    assert api_host("https://api.metronome.com") == "https://api.metronome.com"
    backend = MetronomeBackend(base_url="http://127.0.0.1:9", token="tok-SECRET")
    assert "SECRET" not in repr(backend) and "SECRET" not in backend.target


class _Repo:
    """The emulator's repository interface over a dict (the engine's own tests use the store's)."""

    def __init__(self):
        self.objects: dict = {}

    def index(self):
        return {i: (t, o.get("archived_at") is not None) for i, (t, o) in self.objects.items()}

    def get(self, object_id):
        found = self.objects.get(object_id)
        return None if found is None else found[1]

    def list(self, type_):
        return [o for t, o in self.objects.values() if t == type_]

    def put(self, type_, obj):
        self.objects[obj["id"]] = (type_, obj)

    def flush(self):
        return {}


def test_emulator_refuses_a_reused_uniqueness_key_and_the_reader_ignores_it():
    # Mutation: an emulator that accepts the same key twice lets a re-sent create make two contracts.
    emu = Emulator(_Repo())
    customer = emu.execute("POST", "/v1/customers", {"name": "Acme"})["data"]["id"]
    body = {"customer_id": customer, "starting_at": "2026-01-01T00:00:00Z", "uniqueness_key": "k-1"}
    contract = emu.execute("POST", "/v1/contracts/create", body)["data"]["id"]
    with pytest.raises(RequestRefused) as refused:
        emu.execute("POST", "/v1/contracts/create", body)
    assert refused.value.status == 409
    assert len(emu.list("contract")) == 1
    stored = emu.get("contract", contract)
    assert stored["uniqueness_key"] == "k-1"  # ContractV2 carries it: a read finds the contract by it
    assert "uniqueness_key" not in read_contract(stored, Keys({customer: "acme"}))
    edit = {"customer_id": customer, "contract_id": contract, "uniqueness_key": "k-2",
            "update_contract_name": "Renamed"}
    emu.execute("POST", "/v2/contracts/edit", edit)
    with pytest.raises(RequestRefused) as again:
        emu.execute("POST", "/v2/contracts/edit", {**edit, "update_contract_name": "Other"})
    assert again.value.status == 409 and emu.get("contract", contract)["name"] == "Renamed"


def test_operations_of_different_customers_are_independent_and_the_catalog_is_a_barrier():
    # Mutations caught: a contract not waiting for its customer's create (its customer_id
    # placeholder unresolved), or an operation overtaking a product create it needs.
    from types import SimpleNamespace

    from billing_reconciler.apply.journal import _dependencies
    from billing_reconciler.plan.operations import Action, Operation

    def op(name: str, address: str, body: dict) -> Operation:
        return Operation(name, address, Action.CREATE, Request("POST", "/x", body))

    ops = [
        op("create_product", "Product/p", {"name": "P"}),                                   # 0: barrier
        op("create_customer", "Customer/a", {"name": "A"}),                                 # 1
        op("create_customer", "Customer/b", {"name": "B"}),                                 # 2
        op("create_contract", "Contract/a-1", {"customer_id": "${Customer/a.id}"}),         # 3: after 1
        op("edit_contract", "Contract/b-1", {"customer_id": "id-of-b", "contract_id": "c"}),  # 4: after 2
        op("create_rate_card", "RateCard/r", {"name": "R"}),                                # 5: after all
        op("create_customer", "Customer/c", {"name": "C"}),                                 # 6: after 5
    ]
    writer = SimpleNamespace(object_keys={"id-of-b": "b"})
    assert _dependencies(ops, writer) == [set(), {0}, {0}, {0, 1}, {0, 2}, {0, 1, 2, 3, 4}, {5}]
