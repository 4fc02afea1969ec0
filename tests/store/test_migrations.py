"""An older store is upgraded in place by `init`, keeping its data."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from billing_reconciler.store import Store
from billing_reconciler.store.version import LATEST_VERSION

from .pre_alembic import make_pre_alembic


def test_init_upgrades_a_store_without_ts_epoch_and_backfills_it(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path}/state.db")
    lineage, _ = store.init()
    # Make it look like a version-2 store holding one event.
    make_pre_alembic(store, 2)
    with store.transaction() as conn:
        conn.execute(text("ALTER TABLE usage_events DROP COLUMN ts_epoch"))
        conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, properties) "
                          "VALUES ('t1', 'acme', 'api_call', :t, '{}')"),
                     {"t": datetime(2024, 11, 3, 10, 0, tzinfo=timezone.utc)})
    assert store.schema_version() == 2

    again, created = Store(f"sqlite:///{tmp_path}/state.db").init()
    assert (again, created) == (lineage, False)
    assert store.schema_version() == LATEST_VERSION
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT transaction_id, ts_epoch FROM usage_events")).one()
    assert row == ("t1", int(datetime(2024, 11, 3, 10, 0, tzinfo=timezone.utc).timestamp()) * 1_000_000)
