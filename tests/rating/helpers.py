"""Builders for rating tests: the example catalog plus hand-written contracts, and events."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

from billing_reconciler.manifests import load_or_raise
from billing_reconciler.rating import BillingState, UsageEvent, rate_events
from billing_reconciler.rating.timegrid import ts

ROOT = Path(__file__).resolve().parents[2]
_SPECS: dict | None = None


def example_specs() -> dict:
    global _SPECS
    if _SPECS is None:
        specs: dict = {}
        for m in load_or_raise(ROOT / "manifests").manifests:
            specs.setdefault(m.kind, {})[m.name] = m.spec
        _SPECS = specs
    return copy.deepcopy(_SPECS)


def state(contracts: dict | None = None, customers: dict | None = None, *, keep_examples: bool = True,
          history: dict | None = None) -> BillingState:
    specs = example_specs()
    if not keep_examples:
        specs["Customer"], specs["Contract"] = {}, {}
    specs["Customer"].update(customers or {})
    specs["Contract"].update(contracts or {})
    return BillingState.from_specs(specs, history)


_n = 0


def ev(customer: str, event_type: str, when: str, **properties) -> UsageEvent:
    global _n
    _n += 1
    return UsageEvent(f"tx-{_n}", customer, event_type, ts(when), properties)


def invoices(st: BillingState, events, until: str, **kw):
    return rate_events(st, events, ts(until), **kw).invoices


def D(x) -> Decimal:  # noqa: N802
    return Decimal(str(x))


def summary(invs) -> list[tuple]:
    """(contract, type, start date, subtotal, total) per invoice: what the oracles compare."""
    return [(i.contract, i.type, i.start_timestamp.date().isoformat(), i.subtotal, i.total) for i in invs]
