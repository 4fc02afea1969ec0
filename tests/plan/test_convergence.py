"""Convergence as a property: for random small accounts and random edits to them, applying the
plan and planning again gives no operations, and planning twice gives the same plan."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_reconciler import canonical
from billing_reconciler.plan.planfile import plan_to_json
from billing_reconciler.store.store import Store

from .support import Account, apply, catalog, contract, customer, make_plan

KEYS = st.sampled_from(["a", "b", "c"])
MULTIPLIERS = st.sampled_from(["0.5", "0.8", "0.9", "0.95"])


@st.composite
def contract_terms(draw):
    return {
        "commits": tuple(sorted(draw(st.sets(KEYS, max_size=2)))),
        "credits": tuple(sorted(draw(st.sets(KEYS, max_size=2)))),
        "overrides": {k: draw(MULTIPLIERS) for k in sorted(draw(st.sets(KEYS, max_size=2)))},
        "charges": tuple(sorted(draw(st.sets(KEYS, max_size=2)))),
        "config": draw(st.sampled_from(["aws", None])),
    }


@st.composite
def accounts(draw):
    customers = draw(st.lists(st.sampled_from(["acme", "bolt", "cyan", "dune"]), min_size=1, max_size=3, unique=True))
    docs = catalog()
    for name in sorted(customers):
        docs.append(customer(name, display=draw(st.sampled_from([None, f"{name.title()} Inc"]))))
        docs.append(contract(f"{name}-2024", name, **draw(contract_terms())))
    return docs


@st.composite
def edits(draw, docs):
    """The same account after a few edits the planner can make without refusing."""
    edited = [dict(d, spec=dict(d["spec"])) for d in docs]
    contracts = [d for d in edited if d["kind"] == "Contract"]
    for doc in draw(st.lists(st.sampled_from(contracts), max_size=3)):
        terms = draw(contract_terms())
        terms["config"] = "aws" if "billing_provider_configuration" in doc["spec"] else None
        fresh = contract(doc["metadata"]["name"], doc["spec"]["customer"], **terms)["spec"]
        for field in ("commits", "credits", "overrides", "scheduled_charges"):
            if field in fresh:
                doc["spec"][field] = fresh[field]
            else:
                doc["spec"].pop(field, None)
        if draw(st.booleans()):
            doc["spec"]["ending_before"] = "2026-01-01T00:00:00Z"
    for doc in edited:
        if doc["kind"] == "Customer" and draw(st.booleans()):
            doc["spec"]["name"] = doc["spec"]["name"] + " (renamed)"
    return edited


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_apply_then_plan_is_empty(data):
    docs = data.draw(accounts())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(f"sqlite:///{root}/state.db")
        store.init()
        account = Account(root, docs)
        for step in range(3):
            plan = make_plan(store, account)
            assert not plan.errored, [str(p) for p in plan.errors]
            again = make_plan(store, account)
            assert canonical.dumps(plan_to_json(plan)) == canonical.dumps(plan_to_json(again))  # determinism
            apply(store, plan)
            after = make_plan(store, account)
            assert not after.operations, [(o.op, o.address, [c.path for c in o.changes]) for o in after.operations]
            assert not after.drift and not after.unmanaged
            if step < 2:
                account = Account(root, data.draw(edits(account.docs)))
        store.close()
