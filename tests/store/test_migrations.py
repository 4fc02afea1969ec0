"""An older store is upgraded in place by `init`, keeping its data."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from billing_reconciler.events.billing import open_events
from billing_reconciler.events.move import mover
from billing_reconciler.store import Store
from billing_reconciler.store.store import StoreError
from billing_reconciler.store.version import BASELINE, LATEST_VERSION

from .pre_alembic import make_pre_alembic, store_at


def test_a_version_2_store_s_event_is_moved_out_before_the_upgrade_drops_its_table(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/state.db"
    store, lineage = store_at(url, BASELINE)
    # Make it look like a version-2 store holding one event (no ts_epoch column yet).
    make_pre_alembic(store, 2)
    stamp = datetime(2024, 11, 3, 10, 0, tzinfo=timezone.utc)
    with store.transaction() as conn:
        conn.execute(text("ALTER TABLE usage_events DROP COLUMN ts_epoch"))
        conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, properties) "
                          "VALUES ('t1', 'acme', 'api_call', :t, '{\"gb\": 2.5}')"), {"t": stamp})
    assert store.schema_version() == 2

    # Without the move, the upgrade refuses to drop the event, and the old steps roll back with it.
    # Mutation caught: revision v7 dropping usage_events without looking at its rows.
    with pytest.raises(StoreError, match=r"usage_events table holds 1 event\(s\) .* were not moved"):
        Store(url).init()
    assert store.schema_version() == 2
    with store.engine.connect() as conn:
        assert "ts_epoch" not in {c["name"] for c in inspect(conn).get_columns("usage_events")}
        assert conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one() == 1

    events = tmp_path / "events.duckdb"
    moved: list = []
    again, created = Store(url).init(move_events=mover(url, events, moved=moved))
    assert (again, created) == (lineage, False)
    assert store.schema_version() == LATEST_VERSION
    assert [(m.read, m.inserted) for m in moved] == [(1, 1)]
    with store.engine.connect() as conn:
        assert not inspect(conn).has_table("usage_events")
    with open_events(url, events, read_only=True) as con:
        assert con.execute('SELECT transaction_id, customer_ref, "timestamp", properties ->> \'$.gb\' '
                           "FROM usage_events").fetchall() == [("t1", "acme", stamp, "2.5")]
