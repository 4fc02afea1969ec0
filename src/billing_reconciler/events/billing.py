"""Glue between the store and the rating engine: the state, the SQL aggregation, the invoices.

The only place that reads the store for rating; everything it calls in `rating/` is pure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.engine import Engine

from ..rating import BillingState, RatingResult, rate, usage_request
from .aggregate import aggregate


class StoreNotReady(Exception):
    pass


def open_engine(url: str) -> Engine:
    """The store's engine; the store must have been created with `billing-reconciler init`."""
    from sqlalchemy import inspect

    from ..store import NotInitialized
    from ..store.access import open_existing
    from ..store.urls import StoreUrlError, display

    try:
        engine = open_existing(url).engine
    except (StoreUrlError, NotInitialized) as exc:
        raise StoreNotReady(str(exc)) from None
    if not inspect(engine).has_table("usage_events"):
        raise StoreNotReady(f"the store at {display(url)} has no usage_events table: run `billing-reconciler init` "
                            "to upgrade it")
    return engine


def state_from_store(url: str) -> BillingState:
    """The applied state as the backend reports it, with each contract's usage-filter history."""
    from ..service import billing_state
    from ..store.access import open_existing

    return billing_state(open_existing(url))


def state_from_manifests(directory: str | os.PathLike[str]) -> BillingState:
    """The manifests' state, applied to a throw-away emulator and read back (service.manifests_state)."""
    from ..manifests import load_or_raise
    from ..service import manifests_state

    return manifests_state(load_or_raise(directory).manifests)


def rate_store(engine: Engine, states: Iterable[BillingState] | BillingState, until: datetime, *,
               start: datetime | None = None, customers: Iterable[str] | None = None,
               workers: int = 2) -> list[RatingResult]:
    """Rate the stored events against one or more states (one aggregation pass serves them all,
    e.g. the state before and after a plan). Returns one result per state, in order."""
    states = [states] if isinstance(states, BillingState) else list(states)
    customers = list(customers) if customers is not None else None
    request = usage_request(states, until, customers)
    usage = aggregate(engine, request.queries, request.cuts, workers=workers)
    return [rate(s, usage, until, start=start, customers=customers) for s in states]
