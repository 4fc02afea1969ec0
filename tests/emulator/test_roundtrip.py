"""The property that catches a wrong request body: what the backend makes of our requests reads
back as the manifest said.

Generated manifests cover every kind and every keyed list of a contract (tests/emulator/
manifests_strategy.py), each document valid for the models and the rules. Three properties:

- reader(execute(request(spec))) == comparable(spec), per object of every kind: the create
  requests (and their follow-up edits) are executed on the emulator directly, with the ids of
  added items mapped by order here, not by the applier, and each object is read back;
- plan -> apply -> plan (with refresh) is empty, for the same manifests;
- after edits the API allows (items added, archived, changed; names, end dates, usage filters,
  thresholds, aliases, billing provider configurations, later rates), plan -> apply -> plan is
  empty again.

tests/emulator/MUTATIONS.md records which mutation of the builders, readers and emulator each
property catches.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing_reconciler.apply.applier import resolve
from billing_reconciler.apply.backends.embedded import EmbeddedBackend
from billing_reconciler.money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME
from billing_reconciler.plan.operations import OBJECT_CREATES
from billing_reconciler.plan.readers import API_TYPES, Keys, read
from billing_reconciler.service import add_credit_type
from billing_reconciler.specform import KEYED_LISTS, comparable
from billing_reconciler.store.store import Store

from ..plan.support import apply, make_plan
from .bodies import DataAccount
from .manifests_strategy import CUSTOM_CREDIT_TYPE, CUSTOM_CREDIT_TYPE_ID, accounts, edited

NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
# No shrinking: an example takes ~0.3 s and shrinking a whole account takes minutes; a failure names
# the object (and the plan's changes name the field), which is what finding the bug needs.
PROPERTY = settings(max_examples=30, deadline=None, database=None,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _fresh_store(root: Path) -> Store:
    store = Store(f"sqlite:///{root}/state.db")
    store.init()
    add_credit_type(store, CUSTOM_CREDIT_TYPE, credit_type_id=CUSTOM_CREDIT_TYPE_ID)  # made in the UI
    return store


def _described(plan) -> list[Any]:
    return ([(o.op, o.address, [(c.path, c.before, c.after) for c in o.changes]) for o in plan.operations]
            + [("drift", d.address, [(c.path, c.before, c.after) for c in d.changes]) for d in plan.drift]
            + [str(e) for e in plan.errors])


def _apply_then_plan_is_empty(store: Store, account: DataAccount, step: str) -> None:
    plan = make_plan(store, account)
    assert not plan.errored, (step, [str(e) for e in plan.errors])
    if step == "create":
        assert plan.operations, (step, "the manifests planned nothing")
    apply(store, plan)
    again = make_plan(store, account)
    assert not again.operations and not again.drift and not again.errors, (step, _described(again))


def execute_creates(store: Store, account: DataAccount) -> tuple[dict[str, str], dict[str, str], Any]:
    """Send every request of the account's first plan to the emulator, in order, resolving
    placeholders; item ids of each op's added items are mapped by order (the API appends).
    Returns (address -> id, item id -> key, a getter for API objects)."""
    plan = make_plan(store, account)
    assert not plan.errored, [str(e) for e in plan.errors]
    ids: dict[str, str] = {}
    item_keys: dict[str, str] = {}
    with store.transaction(holder="roundtrip") as conn:  # nothing flushed: the store is left as it was
        emulator = EmbeddedBackend().emulator(conn)
        for op in plan.operations:
            request = resolve(op.request, ids, NOW)
            response = emulator.execute(request.method, request.path, request.body)
            if op.op in OBJECT_CREATES:
                ids[op.address] = response["data"]["id"]
            api = emulator.get(API_TYPES[op.kind], ids[op.address]) or {}
            for list_name in KEYED_LISTS:
                added = [e.key for e in op.items if e.effect == "add" and e.list_name == list_name]
                fresh = [i["id"] for i in api.get(list_name) or [] if i["id"] not in item_keys]
                assert len(fresh) == len(added), (op.op, op.address, list_name, added, fresh)
                for item_id, key in zip(fresh, added):
                    item_keys[item_id] = key
                    ids[f"{op.address}.{list_name}[{key}]"] = item_id
        objects = {address: emulator.get(API_TYPES[address.split("/")[0]], i) for address, i in ids.items()
                   if "." not in address}
    return ids, item_keys, objects


@PROPERTY
@given(docs=accounts())
def test_reader_of_executed_requests_is_the_comparable_spec_for_every_kind(docs):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _fresh_store(root)
        try:
            account = DataAccount(root, docs)
            ids, item_keys, objects = execute_creates(store, account)
            keys = Keys({i: address.split("/", 1)[1] for address, i in ids.items() if "." not in address}, item_keys,
                        {USD_CREDIT_TYPE_ID: USD_CREDIT_TYPE_NAME, CUSTOM_CREDIT_TYPE_ID: CUSTOM_CREDIT_TYPE})
            for manifest in account.load().manifests:
                api = objects[manifest.address]
                assert api is not None, manifest.address
                assert comparable(read(manifest.kind, api, keys)) == comparable(manifest.spec), manifest.address
        finally:
            store.close()


@PROPERTY
@given(docs=accounts())
def test_apply_then_plan_is_empty_for_every_kind_and_keyed_list(docs):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _fresh_store(root)
        try:
            _apply_then_plan_is_empty(store, DataAccount(root, docs), "create")
        finally:
            store.close()


@PROPERTY
@given(data=st.data())
def test_edits_the_api_allows_apply_then_plan_is_empty(data):
    docs = data.draw(accounts())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = _fresh_store(root)
        try:
            account = DataAccount(root, docs)
            plan = make_plan(store, account)
            apply(store, plan)
            account.docs = data.draw(edited(docs))
            _apply_then_plan_is_empty(store, account, "edit")
        finally:
            store.close()
