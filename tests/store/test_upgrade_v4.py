"""A store written by the release before the emulator (schema v4, the baseline) is upgraded by
`init`: its rows are kept, the emulator is seeded from its objects under the same ids, and the
next plan of the manifests it was applied from is empty. A store from a newer release is refused.

The rows in fixtures/v4/store.json were written by that release (commit 629dffb) applying
fixtures/v4/manifests and then a set_usage_filter, so the fixture holds an object's whole life:
creates, keyed items with their ids, a usage-filter history of two entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from billing_reconciler.service import billing_state, current_state, plan_from_tree
from billing_reconciler.store import Store, migrations
from billing_reconciler.store.store import NotInitialized, StoreError
from billing_reconciler.store.version import BASELINE, LATEST_VERSION

FIXTURE = Path(__file__).parent / "fixtures" / "v4"


def write_v4_store(url: str) -> dict:
    """The v4 schema (the baseline revision: test_alembic checks it is the v4 release's, statement
    for statement) holding the v4 release's rows, without Alembic's version table."""
    rows = json.loads((FIXTURE / "store.json").read_text())
    store = Store(url)
    with store.engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        for table, data in rows.items():
            columns = data["columns"]
            if table == "state":
                columns = ["id", *columns]
            for row in data["rows"]:
                values = [1, *row] if table == "state" else row
                conn.execute(text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                  f"({', '.join(':' + c for c in columns)})"), dict(zip(columns, values)))
        if conn.dialect.name == "postgresql":
            for table in ("objects", "sub_items", "edits"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    store.close()
    return rows


def test_a_v4_store_is_upgraded_by_init_and_the_next_plan_is_empty(store_url, tmp_path):
    rows = write_v4_store(store_url)
    store = Store(store_url)
    assert store.schema_version() == 4
    # Not upgraded yet: a plan says to run init, and reads nothing wrongly.
    with pytest.raises(NotInitialized, match="schema v4; run `billing-reconciler init`"):
        store.snapshot()
    lineage = rows["state"]["rows"][0][0]
    assert store.init() == (lineage, False)
    assert store.schema_version() == LATEST_VERSION
    manifests = tmp_path / "manifests"
    shutil.copytree(FIXTURE / "manifests", manifests)
    plan = plan_from_tree(store, manifests)
    assert not plan.operations and not plan.drift, [(o.op, o.address, [c.path for c in o.changes])
                                                     for o in plan.operations]
    # The ids are the v4 release's, and the emulator holds each object under its id.
    snapshot = current_state(store)
    v4_ids = {f"{r[1]}/{r[2]}": r[3] for r in rows["objects"]["rows"]}
    assert {a: o.remote_id for a, o in snapshot.objects.items()} == v4_ids
    assert all(store.backend_body(i) is not None for i in v4_ids.values())
    # The usage-filter history survived: the initial filter, then the one set later.
    history = billing_state(store).usage_filters["widgetsexpress-2024"]
    assert [(sorted(h.group_values), h.starting_at) for h in history] == [
        (["US"], "2024-11-01T00:00:00Z"), (["EU", "US"], "2025-01-01T00:00:00Z")]
    # And the store keeps working: a change applies and converges.
    store.close()


def test_a_store_from_a_newer_release_is_refused_not_misread(store_url):
    store = Store(store_url)
    store.init()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": f"v{LATEST_VERSION + 1}"})
    with pytest.raises(StoreError, match=f"schema revision 'v{LATEST_VERSION + 1}', which this release does not know"):
        store.snapshot()
    with pytest.raises(StoreError, match="a newer billing-reconciler wrote it"):
        store.init()
    store.close()
