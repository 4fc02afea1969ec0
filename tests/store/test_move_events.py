"""A store from before the events file keeps its events in `usage_events`: the first `init`,
`ingest` or `invoices` moves them into the DuckDB file, once, and rating them there gives what the
reference gives. The old tables stay (a later store migration drops them)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing_reconciler.canonical import dumps
from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import open_events
from billing_reconciler.events.ingest import ingest
from billing_reconciler.events.move import move_store_events
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import to_micros
from billing_reconciler.store import Store
from billing_reconciler.store.version import LATEST_VERSION
from tests.conftest import run_cli

from .pre_alembic import make_pre_alembic

START = datetime(2024, 11, 1, tzinfo=timezone.utc)
CUTS = [START, START + timedelta(days=7), START + timedelta(days=14)]
QUERIES = [
    MetricQuery("calls", "COUNT", None, frozenset({"api_call"}), None, (), ("region",)),
    MetricQuery("hours", "SUM", "hours", frozenset({"compute"}), None, (PropertyFilter("hours", exists=True),),
                ("region",)),
    MetricQuery("peak", "MAX", "hours", None, None, (), ()),
]


def _events(n: int, first: int = 0) -> list[UsageEvent]:
    return [UsageEvent(f"t{i}", ["acme", "acme-alias"][i % 2], ["api_call", "compute"][i % 3 % 2],
                       START + timedelta(minutes=37 * i),
                       {"region": ["US", "EU"][i % 5 % 2], "hours": Decimal(i % 7) / 4, "note": None})
            for i in range(first, first + n)]


def _old_store(url: str, events: list[UsageEvent], version: int | None = None) -> Store:
    """A store as the previous release left it: events in its usage_events table."""
    store = Store(url)
    store.init()
    if version is not None:
        make_pre_alembic(store, version)
    with store.transaction() as conn:
        if version is not None and version < 4:
            for table in ("usage_rollup", "usage_rollup_state", "usage_shapes"):
                conn.execute(text(f"DROP TABLE {table}"))
        for e in events:
            conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, "
                              "ts_epoch, properties) VALUES (:tx, :ref, :type, :ts, :micros, :props)"),
                         {"tx": e.transaction_id, "ref": e.customer_id, "type": e.event_type, "ts": e.timestamp,
                          "micros": to_micros(e.timestamp), "props": dumps(e.properties)})
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


def test_the_first_open_moves_the_stores_events_once(store_url, tmp_path):
    _old_store(store_url, _events(500))
    moved: list = []
    with open_events(store_url, tmp_path / "events.duckdb", moved=moved) as con:
        assert [(m.read, m.inserted, m.errors) for m in moved] == [(500, 500, [])]
        assert aggregate(con, QUERIES, CUTS).rows == aggregate_events(_events(500), QUERIES, CUTS).rows
        ingest(con, _events(200, first=450))  # 50 already moved
    moved.clear()
    with open_events(store_url, tmp_path / "events.duckdb", read_only=True, moved=moved) as con:
        assert moved == []  # not moved again
        assert aggregate(con, QUERIES, CUTS).rows == aggregate_events(_events(650), QUERIES, CUTS).rows


def test_a_move_cut_short_and_run_again_counts_nothing_twice(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    store = _old_store(url, _events(300))
    with open_events(url, tmp_path / "events.duckdb") as con:
        # As if the process died after the events were written but before the move was recorded.
        con.execute("DELETE FROM store_moves")
        again = move_store_events(con, store.engine)
        assert (again.read, again.inserted) == (300, 0)
        assert con.execute("SELECT count(*) FROM usage_events").fetchone() == (300,)


def test_an_old_value_the_engine_cannot_sum_exactly_is_named_by_its_row(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    events = _events(3)
    events[1] = UsageEvent("big", "acme", "compute", START, {"hours": Decimal("1e400")})
    _old_store(url, events)
    moved: list = []
    with open_events(url, tmp_path / "events.duckdb", moved=moved) as con:
        [error] = moved[0].errors  # beyond billing_reconciler.bounds, named with its row and field
        assert error.line == 2 and error.message.startswith("properties.hours: ") and "is too large" in error.message
        assert con.execute("SELECT count(*) FROM usage_events").fetchone() == (2,)


def test_init_of_a_version_3_store_upgrades_it_and_moves_its_events(tmp_path):
    url = f"sqlite:///{tmp_path}/.billing-reconciler/state.db"
    _old_store(url, _events(40), version=3)
    (tmp_path / "manifests").mkdir()
    run_cli("--store", url, "init", cwd=tmp_path, check=True)
    assert Store(url).schema_version() == LATEST_VERSION
    with open_events(url, read_only=True) as con:  # the default file beside the store
        assert con.execute("SELECT count(*) FROM usage_events").fetchone() == (40,)
