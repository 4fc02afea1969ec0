"""Glue between the stores and the rating engine: the state, the events file, the invoices.

The only place that reads the stores for rating; everything it calls in `rating/` is pure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from ..rating import BillingState, RatingResult, prepare, rate, usage_request
from .aggregate import aggregate
from .engine import EventsError, close, connect, events_dir, events_path
from .ingest import IngestResult


class StoreNotReady(EventsError):
    pass


@contextmanager
def open_events(store_url: str, events_db: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                memory_limit: str | None = None, moved: list[IngestResult] | None = None):
    """The events file of this store, open for the duration of the block.

    On a store not upgraded to v7 yet, writers (`ingest`) move its old `usage_events` into the
    file first (once: `events.move`); readers (`invoices`) of a file that has not been moved yet do
    the same, opening it for writing for that first time. (`init` moves them itself, before the
    upgrade that drops the table.) `moved` receives the move's result, if one ran.
    """
    from ..store import NotInitialized
    from ..store.access import open_existing
    from ..store.urls import StoreUrlError

    try:
        store = open_existing(store_url)  # never creates a store; an unreachable one raises
    except (StoreUrlError, NotInitialized) as exc:
        raise StoreNotReady(str(exc)) from None
    try:
        path = events_path(store_url, events_db)
        con = connect(path, read_only=read_only, memory_limit=memory_limit)
        if read_only and _needs_move(con, store.engine):
            close(con)
            con = connect(path, memory_limit=memory_limit)
            read_only = False
        try:
            if not read_only:
                from .move import move_store_events

                result = move_store_events(con, store.engine)
                if result is not None and moved is not None:
                    moved.append(result)
                _keep_metric_columns(con, store)
            yield con
        finally:
            close(con)
    finally:
        store.close()


def _keep_metric_columns(con: duckdb.DuckDBPyConnection, store) -> None:
    """Give the properties the store's billable metrics read their own columns (`events.columns`).
    A store this release cannot read yet (an older schema before `init`) is left for later: rating
    reads properties without columns from the JSON."""
    from ..store import StoreError
    from .columns import ensure, metric_keys

    try:
        snapshot = store.snapshot()
    except StoreError:
        return
    ensure(con, metric_keys(o.spec for o in snapshot.objects.values() if o.kind == "BillableMetric"))


def _needs_move(con: duckdb.DuckDBPyConnection, engine) -> bool:
    from sqlalchemy import inspect

    try:
        done = con.execute("SELECT 1 FROM store_moves LIMIT 1").fetchone() is not None
    except duckdb.CatalogException:
        done = False
    return not done and inspect(engine).has_table("usage_events")


def state_from_store(url: str, backend=None) -> BillingState:
    """The applied state as the backend reports it, with each contract's usage-filter history."""
    from ..service import billing_state
    from ..store.access import open_existing

    return billing_state(open_existing(url), backend)


def state_from_manifests(directory: str | os.PathLike[str]) -> BillingState:
    """The manifests' state, applied to a throw-away emulator and read back (service.manifests_state)."""
    from ..manifests import load_or_raise
    from ..service import manifests_state

    return manifests_state(load_or_raise(directory).manifests)


ENGINES = ("duckdb", "spark")


def rate_store(con: duckdb.DuckDBPyConnection, states: Iterable[BillingState] | BillingState, until: datetime, *,
               start: datetime | None = None, customers: Iterable[str] | None = None, engine: str = "duckdb",
               spark_url: str | None = None) -> list[RatingResult]:
    """Rate the stored events against one or more states (one aggregation pass serves them all,
    e.g. the state before and after a plan). Returns one result per state, in order.

    `engine` runs the aggregation: "duckdb" on `con`, or "spark" (`events.spark`) over the same
    events, on the master `spark_url` (default local mode)."""
    states = [states] if isinstance(states, BillingState) else list(states)
    customers = list(customers) if customers is not None else None
    prepared = [prepare(s, until, customers) for s in states]  # once, for the request and the rating
    request = usage_request(states, until, customers, prepared=prepared)
    if engine == "spark":
        from .spark import aggregate_on_spark

        usage = aggregate_on_spark(con, request.queries, request.cuts, spark_url, parquet=events_dir(con))
    elif engine == "duckdb":
        usage = aggregate(con, request.queries, request.cuts)
    else:
        raise EventsError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return [rate(s, usage, until, start=start, customers=customers, prepared=p) for s, p in zip(states, prepared)]


def events_in_file(path: str | os.PathLike[str], fmt: str, *, memory_limit: str | None = None):
    """A throw-away in-memory events database holding the events of one file (read in place:
    nothing is written next to the store). Returns (connection, IngestResult)."""
    from .ingest import ingest_file

    con = _memory(memory_limit)
    return con, ingest_file(con, Path(path), fmt)


def _memory(memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    from .engine import DEFAULT_MEMORY, SCHEMA, session

    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit or os.environ.get(
        "BILLING_RECONCILER_EVENTS_MEMORY") or DEFAULT_MEMORY})
    session(con)
    con.execute(SCHEMA)
    return con
