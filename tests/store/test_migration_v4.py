"""Migration v4: a store from before the usage rollup, holding events, is upgraded by `init`: its
events are rolled up, and rating from the rollup gives what rating every event gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import inspect, text

from billing_reconciler.canonical import dumps
from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import open_engine
from billing_reconciler.events.ingest import ingest
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import to_micros
from billing_reconciler.store import Store
from billing_reconciler.store.version import LATEST_VERSION

from .pre_alembic import make_pre_alembic

START = datetime(2024, 11, 1, tzinfo=timezone.utc)
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


def _make_it_a_version_3_store(store: Store, events: list[UsageEvent]) -> None:
    make_pre_alembic(store, 3)
    with store.transaction() as conn:
        for table in ("usage_rollup", "usage_rollup_state", "usage_shapes"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("CREATE INDEX ix_usage_events_customer_ref ON usage_events (customer_ref)"))
        for e in events:
            conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, "
                              "ts_epoch, properties) VALUES (:tx, :ref, :type, :ts, :micros, :props)"),
                         {"tx": e.transaction_id, "ref": e.customer_id, "type": e.event_type, "ts": e.timestamp,
                          "micros": to_micros(e.timestamp), "props": dumps(e.properties)})


def test_init_rolls_up_the_events_of_a_store_from_before_the_rollup(store_url):
    store = Store(store_url)
    lineage, _ = store.init()
    old = _events(500)
    _make_it_a_version_3_store(store, old)
    assert store.schema_version() == 3
    engine = open_engine(store_url)
    cuts = [START, START + timedelta(days=7), START + timedelta(days=14)]
    # Not upgraded yet: ingest and rating still work, from the events.
    ingest(engine, _events(100, first=500))
    assert aggregate(engine, QUERIES, cuts).rows == aggregate_events(_events(600), QUERIES, cuts).rows

    assert Store(store_url).init() == (lineage, False)
    assert store.schema_version() == LATEST_VERSION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(events) FROM usage_rollup")).scalar() == 600
        assert conn.execute(text("SELECT max_event_id FROM usage_rollup_state")).scalar() == \
            conn.execute(text("SELECT max(id) FROM usage_events")).scalar()
        indexes = {i["name"] for i in inspect(conn).get_indexes("usage_events")}
    assert "ix_usage_events_customer_ref" not in indexes
    ingest(engine, _events(200, first=550))  # 50 duplicates
    expected = aggregate_events(_events(750), QUERIES, cuts).rows
    assert aggregate(engine, QUERIES, cuts).rows == expected
    assert aggregate(engine, QUERIES, cuts, use_rollup=False).rows == expected
