"""The store on real SQLite files and real PostgreSQL databases: init, migrations, snapshots,
history, transactions and the apply lock."""

from __future__ import annotations

import threading
import time
import uuid

from billing_reconciler.specform import comparable

import pytest
from sqlalchemy import inspect, text

from billing_reconciler.store import migrations, version
from billing_reconciler.store.store import LockTimeout, Snapshot, Store, StoreError

from ..plan.support import Account, apply, converge, make_plan, small_account

TABLES = {"schema_migrations", "state", "objects", "sub_items", "edits", "invoices"}
# Events live in the DuckDB events file: a new store has none of the usage tables of older releases.
RETIRED = {"usage_events", "usage_shapes", "usage_rollup", "usage_rollup_state"}


def table_names(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


# --- init ---------------------------------------------------------------------------------------

def test_init_creates_tables_and_lineage(store_url):
    store = Store(store_url)
    assert store.state() == (None, 0)
    assert not store.snapshot().initialized
    lineage, created = store.init()
    assert created
    assert str(uuid.UUID(lineage)) == lineage
    assert TABLES <= table_names(store)
    assert not RETIRED & table_names(store)  # mutation: the revisions still make one of them
    assert store.state() == (lineage, 0)
    assert store.schema_version() == version.LATEST_VERSION
    snapshot = store.snapshot()
    assert snapshot.initialized and snapshot.lineage == lineage and snapshot.serial == 0 and snapshot.objects == {}
    store.close()


def test_init_is_idempotent(store):
    lineage, serial = store.state()
    versions = count(store, "schema_migrations")
    again, created = store.init()
    assert (again, created) == (lineage, False)
    assert count(store, "schema_migrations") == versions == len(version.REVISIONS)
    assert count(store, "state") == 1
    assert store.state() == (lineage, serial)


def test_init_keeps_applied_state(store, account):
    converge(store, account)
    before = store.snapshot()
    assert store.init() == (before.lineage, False)
    after = store.snapshot()
    assert after.serial == before.serial == 1
    assert {a: o.remote_id for a, o in after.objects.items()} == {a: o.remote_id for a, o in before.objects.items()}


# --- migrations ---------------------------------------------------------------------------------

def test_migrate_reports_what_it_ran(store_url):
    store = Store(store_url)
    with store.engine.begin() as conn:
        assert version.current_version(conn) == 0
        assert migrations.migrate(conn) == list(version.REVISIONS)
    with store.engine.begin() as conn:
        assert migrations.migrate(conn) == []
        assert version.current_version(conn) == version.LATEST_VERSION
    store.close()


# --- snapshots ----------------------------------------------------------------------------------

def test_snapshot_contents(store, account):
    converge(store, account)
    snapshot = store.snapshot()
    loaded = {m.address: m for m in account.load().manifests}
    assert set(snapshot.objects) == set(loaded)
    for address, obj in snapshot.objects.items():
        assert obj.address == address
        assert str(uuid.UUID(obj.remote_id)) == obj.remote_id
        assert obj.spec == comparable(loaded[address].spec)
        assert obj.applied_digest == loaded[address].digest == obj.body_digest
        assert not obj.drifted and not obj.archived
    contract = snapshot.objects["Contract/c1-2024"]
    keys = sorted((i.list_name, i.key) for i in contract.items)
    assert keys == [("commits", "prepaid"), ("overrides", "cloud-discount"), ("scheduled_charges", "platform-fee")]
    assert all(not i.archived for i in contract.items)
    commit = contract.item_id("commits", "prepaid")
    assert commit is not None and contract.item_id("commits", "nope") is None
    # The store maps the key to the id of the commit the backend holds (it keeps no copy of its body).
    held = store.backend_body(contract.remote_id)
    assert [c["id"] for c in held["commits"]] == [commit]
    customer = snapshot.objects["Customer/c1"]
    assert [(i.list_name, i.key) for i in customer.items] == [("customer_billing_provider_configurations", "aws")]


def test_snapshot_leaves_archived_objects_out_unless_asked(store, account):
    converge(store, account)
    account.remove("Customer/c2", "Contract/c2-2024")
    apply(store, make_plan(store, account, prune=True))
    assert "Customer/c2" not in store.snapshot().objects
    everything = store.snapshot(include_archived=True)
    assert everything.objects["Customer/c2"].archived and everything.objects["Contract/c2-2024"].archived
    assert not everything.objects["Customer/c1"].archived


def test_snapshot_reads_sub_items_only_when_asked(store, account):
    converge(store, account)
    snapshot = store.snapshot()
    assert all(o._items is None for o in snapshot.objects.values())
    snapshot.objects["Contract/c1-2024"].items  # noqa: B018 - reads this object's items only
    assert snapshot.objects["Contract/c2-2024"]._items is None
    snapshot.load_items()
    assert all(o._items is not None for o in snapshot.objects.values())


def test_snapshot_refuses_to_mix_sub_items_of_a_later_apply(store, account):
    converge(store, account)
    snapshot = store.snapshot()
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    apply(store, make_plan(store, account))
    with pytest.raises(StoreError, match="changed while it was being read"):
        snapshot.objects["Contract/c1-2024"].items  # noqa: B018


def test_snapshot_of_a_plain_snapshot_object():
    snapshot = Snapshot(None, 0, {})
    assert not snapshot.initialized
    snapshot.load_items()  # nothing to read, no store


# --- history ------------------------------------------------------------------------------------

def test_history_is_newest_first_and_filters_by_address(store, account):
    converge(store, account)
    account.spec("Contract/c1-2024")["overrides"][0]["multiplier"] = 0.9
    apply(store, make_plan(store, account))
    account.spec("Customer/c2")["name"] = "Renamed"
    apply(store, make_plan(store, account))

    rows = store.history()
    assert [r["serial"] for r in rows] == sorted((r["serial"] for r in rows), reverse=True)
    assert rows[0]["serial"] == 3 and rows[0]["op"] == "set_customer_name" and rows[0]["address"] == "Customer/c2"
    assert rows[1]["serial"] == 2 and rows[1]["op"] == "edit_contract"
    first = [r for r in rows if r["serial"] == 1]
    assert first[-1]["op"] == "create_billable_metric"  # the first operation of the first apply is the oldest
    assert first[0]["address"] == "Contract/c2-2024"
    assert all(r["actor"] == "tests" for r in rows)
    assert rows[0]["request"]["body"]["name"] == "Renamed" and rows[0]["request"]["path"].endswith("/setName")

    contract = store.history("Contract/c1-2024")
    assert [r["op"] for r in contract] == ["edit_contract", "create_contract"]
    assert [r["op"] for r in store.history(limit=2)] == ["set_customer_name", "edit_contract"]


# --- transactions and the lock ---------------------------------------------------------------------

def test_transaction_rolls_back_everything_on_error(store):
    lineage, serial = store.state()
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction(holder="test") as conn:
            conn.execute(text("INSERT INTO objects (kind, key, remote_id, body, applied_digest, created_at, updated_at) "
                              "VALUES ('Customer', 'x', 'id-x', '{}', 'sha256:x', :n, :n)"), {"n": "2024-01-01"})
            conn.execute(text("UPDATE state SET serial = 41 WHERE id = 1"))
            raise RuntimeError("boom")
    assert count(store, "objects") == 0
    assert store.state() == (lineage, serial)
    with store.transaction(holder="test") as conn:  # the lock is free again
        conn.execute(text("UPDATE state SET serial = 5 WHERE id = 1"))
    assert store.state() == (lineage, 5)


def _hold_lock(url: str, holder: str, held: threading.Event, release: threading.Event) -> None:
    other = Store(url)
    try:
        with other.transaction(holder=holder, lock_timeout=5):
            held.set()
            release.wait(30)
    finally:
        other.close()


def test_second_transaction_waits_then_fails_with_the_holder(store, store_url):
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_lock, args=(store_url, "apply by alice", held, release))
    thread.start()
    try:
        assert held.wait(30)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            with store.transaction(lock_timeout=0.6, holder="apply by bob"):
                pytest.fail("took the lock while another transaction held it")
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join(30)
    assert 0.5 <= waited < 10
    message = str(caught.value)
    assert "within 0.6s" in message and "another apply is running" in message and "--lock-timeout" in message
    if store.is_sqlite:
        assert "held by pid" in message and "apply by alice" in message
    else:
        assert "held by PostgreSQL backend pid" in message
    # Once released, the lock can be taken.
    with store.transaction(lock_timeout=5, holder="apply by bob") as conn:
        conn.execute(text("SELECT 1"))


def test_a_waiting_transaction_gets_the_lock_when_it_is_released(store, store_url):
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_lock, args=(store_url, "short apply", held, release))
    thread.start()
    try:
        assert held.wait(30)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        with store.transaction(lock_timeout=10, holder="patient") as conn:
            conn.execute(text("UPDATE state SET serial = serial + 1 WHERE id = 1"))
        assert time.monotonic() - started >= 0.25
    finally:
        release.set()
        thread.join(30)
    assert store.state()[1] == 1
