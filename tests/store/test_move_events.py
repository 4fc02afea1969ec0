"""A store from before the events file keeps its events in `usage_events`. `init` moves them into the
DuckDB file and only then upgrades the store to v7, which drops the old usage tables; until then
`ingest` and `invoices` move them on their first open of the file. Rating them there gives what the
reference gives, and no move, interrupted or repeated, counts an event twice or loses one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from billing_reconciler.canonical import dumps
from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import open_events
from billing_reconciler.events.ingest import ingest
from billing_reconciler.events.move import move_store_events, mover
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import to_micros
from billing_reconciler.store import Store
from billing_reconciler.store.store import StoreError
from billing_reconciler.store.version import BASELINE, LATEST_VERSION, read_schema
from tests.conftest import run_cli

from .pre_alembic import RETIRED_TABLES, make_pre_alembic, store_at, take_back_to_v6

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


def _insert(store: Store, events: list[UsageEvent]) -> None:
    with store.transaction() as conn:
        for e in events:
            conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, "
                              "ts_epoch, properties) VALUES (:tx, :ref, :type, :ts, :micros, :props)"),
                         {"tx": e.transaction_id, "ref": e.customer_id, "type": e.event_type, "ts": e.timestamp,
                          "micros": to_micros(e.timestamp), "props": dumps(e.properties)})


def _old_store(url: str, events: list[UsageEvent], version: int = 6) -> Store:
    """A store as the release of schema `version` left it: its events in its usage_events table."""
    if version >= 4:
        store, _ = store_at(url, f"v{version}")
    else:
        store, _ = store_at(url, BASELINE)
        make_pre_alembic(store, version)
        with store.transaction() as conn:
            for table in ("usage_rollup", "usage_rollup_state", "usage_shapes"):
                conn.execute(text(f"DROP TABLE {table}"))
    _insert(store, events)
    return store


def _schema_and_tables(store: Store) -> tuple[int, set[str], int | None]:
    """(schema version, which old usage tables remain, rows in usage_events or None)."""
    with store.engine.connect() as conn:
        tables = set(RETIRED_TABLES) & set(inspect(conn).get_table_names())
        rows = conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one() if "usage_events" in tables else None
        return read_schema(conn).version, tables, rows


def _count_and_hours(events_db) -> tuple[int, Decimal]:
    """The events file's event count and its exact sum of `hours`."""
    con = duckdb.connect(str(events_db), read_only=True)
    try:
        return con.execute("SELECT count(*), sum(CAST(properties ->> '$.hours' AS DECIMAL(38, 12))) "
                           "FROM usage_events").fetchone()
    finally:
        con.close()


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


def test_init_of_a_version_3_store_moves_its_events_then_upgrades_it(tmp_path):
    url = f"sqlite:///{tmp_path}/.billing-reconciler/state.db"
    store = _old_store(url, _events(40), version=3)
    (tmp_path / "manifests").mkdir()
    run_cli("--store", url, "init", cwd=tmp_path, check=True)
    assert _schema_and_tables(store) == (LATEST_VERSION, set(), None)
    # The default file beside the store; hours: i % 7 over 0..39 is five cycles of 0..6 (5 * 21)
    # plus 0..4 (10), so 115 quarters.
    assert _count_and_hours(tmp_path / ".billing-reconciler" / "events.duckdb") == (40, Decimal("28.75"))


def _events_db_args(store_url: str, events_db) -> list[str]:
    return ["--store", store_url, "--events-db", str(events_db)]


NO_EVENTS_DB_ENV = {"BILLING_RECONCILER_EVENTS_DB": ""}


def test_init_of_a_v6_store_moves_its_events_before_the_upgrade_drops_the_old_tables(store_url, tmp_path):
    store = _old_store(store_url, _events(40))
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 40)
    events = tmp_path / "events.duckdb"
    done = run_cli(*_events_db_args(store_url, events), "init", cwd=tmp_path, check=True)
    assert "Moved 40 event(s) from the store's usage_events table" in done.stderr
    assert "schema v7" in done.stdout
    # Mutations caught: the revision not dropping a table (left over), the move skipped (0 events).
    assert _schema_and_tables(store) == (7, set(), None)
    assert _count_and_hours(events) == (40, Decimal("28.75"))  # 115 quarters, as in the v3 test
    with open_events(store_url, events, read_only=True) as con:
        assert aggregate(con, QUERIES, CUTS).rows == aggregate_events(_events(40), QUERIES, CUTS).rows


def test_init_of_a_postgresql_store_holding_events_without_an_events_db_says_how_and_changes_nothing(
        postgres_url, tmp_path):
    store = _old_store(postgres_url, _events(40))
    refused = run_cli("--store", postgres_url, "init", cwd=tmp_path, env=NO_EVENTS_DB_ENV)
    assert refused.returncode == 1, refused.stderr
    [line] = refused.stderr.splitlines()  # one line, no traceback
    assert line.startswith("Error: the store ") and "holds 40 event(s) in its old usage_events table" in line
    assert "pass --events-db PATH (or set BILLING_RECONCILER_EVENTS_DB) so its 40 events are moved into it " \
           "before the upgrade" in line
    # Mutation caught: migrating first (the events dropped) or dropping what could not be moved.
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 40)
    # The library's init without a move is refused by the revision itself, inside the transaction.
    with pytest.raises(StoreError, match=r"holds 40 event\(s\) .* were not moved"):
        Store(postgres_url).init()
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 40)
    # With a path, the same store upgrades.
    run_cli(*_events_db_args(postgres_url, tmp_path / "events.duckdb"), "init", cwd=tmp_path, check=True)
    assert _schema_and_tables(store) == (7, set(), None)
    assert _count_and_hours(tmp_path / "events.duckdb") == (40, Decimal("28.75"))


def test_init_of_a_postgresql_store_without_events_needs_no_events_db(postgres_url, tmp_path):
    # Nothing to move, nothing to lose: the empty old tables are dropped. Mutation caught: asking
    # for --events-db (or refusing) whatever the table holds.
    store = _old_store(postgres_url, [])
    run_cli("--store", postgres_url, "init", cwd=tmp_path, env=NO_EVENTS_DB_ENV, check=True)
    assert _schema_and_tables(store) == (7, set(), None)


KILLED_AFTER_THE_MOVE = """
import os, signal, sys
from billing_reconciler.store import migrations
from billing_reconciler.cli import main

def killed(conn, **kwargs):  # the events are in the events file (closed); the store's transaction is open
    os.kill(os.getpid(), signal.SIGKILL)

migrations.migrate = killed
main(sys.argv[1:], prog_name="billing-reconciler")
"""


def test_init_killed_between_the_move_and_the_drop_then_run_again_counts_nothing_twice(store_url, tmp_path):
    store = _old_store(store_url, _events(40))
    events = tmp_path / "events.duckdb"
    args = [*_events_db_args(store_url, events), "init"]
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_THE_MOVE, *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 40)  # nothing committed in the store
    assert _count_and_hours(events) == (40, Decimal("28.75"))  # but the events file has them
    again = run_cli(*args, cwd=tmp_path, check=True)
    # Every row is read again and each one is already there. Mutation caught: a move without the
    # transaction_id dedupe (80 events, 57.50 hours).
    assert "Moved 0 event(s) from the store's usage_events table" in again.stderr
    assert _schema_and_tables(store) == (7, set(), None)
    assert _count_and_hours(events) == (40, Decimal("28.75"))


def test_events_added_to_the_old_table_after_an_ingest_moved_it_are_moved_by_init_not_dropped(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    events = tmp_path / "events.duckdb"
    store = _old_store(url, _events(30))
    with open_events(url, events):  # what `ingest` on the v6 store does: moves the 30, records the move
        pass
    _insert(store, _events(10, first=30))  # then an older release, still running, adds 10 more
    run_cli(*_events_db_args(url, events), "init", cwd=tmp_path, check=True)
    # Mutation caught: init trusting the move recorded earlier and dropping the 10 later rows.
    # hours: 0..39 as above, 115 quarters.
    assert _schema_and_tables(store) == (7, set(), None)
    assert _count_and_hours(events) == (40, Decimal("28.75"))


def test_a_row_the_events_file_refuses_stops_the_upgrade_until_it_is_corrected(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    events = _events(3)
    events[1] = UsageEvent("big", "acme", "compute", START, {"hours": Decimal("1e400")})
    store = _old_store(url, events)
    path = tmp_path / "events.duckdb"
    refused = run_cli(*_events_db_args(url, path), "init", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    error = refused.stderr.splitlines()[-1]
    assert error.startswith("Error: ") and "1 of them cannot be moved" in error
    assert "row 2: properties.hours: " in error and "Correct or delete those rows of usage_events" in error
    # Mutation caught: dropping the table although an event in it could not be moved.
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 3)
    with store.transaction() as conn:
        conn.execute(text("UPDATE usage_events SET properties = :p WHERE id = 2"), {"p": dumps({"hours": 3})})
    run_cli(*_events_db_args(url, path), "init", cwd=tmp_path, check=True)
    assert _schema_and_tables(store) == (7, set(), None)
    # hours 0/4 (t0) + 3 (row 2, corrected) + 2/4 (t2)
    assert _count_and_hours(path) == (3, Decimal("3.5"))


def test_invoices_after_init_bill_the_events_a_v6_store_held(example_tree):
    url = f"sqlite:///{example_tree}/.billing-reconciler/state.db"
    run_cli("--store", url, "init", cwd=example_tree, check=True)
    run_cli("--store", url, "apply", "--auto-approve", cwd=example_tree, check=True)
    store = Store(url)
    take_back_to_v6(store)  # the example account applied by release v6, which kept events in the store
    _insert(store, [
        UsageEvent("t-1", "widgets-express-prod", "compute", datetime(2024, 11, 4, 10, tzinfo=timezone.utc),
                   {"region": "US", "hours": 1200}),
        UsageEvent("t-2", "widgetsexpress", "data_export", datetime(2024, 11, 5, 10, tzinfo=timezone.utc),
                   {"region": "US", "gb": 10})])
    assert _schema_and_tables(store) == (6, set(RETIRED_TABLES), 2)
    upgraded = run_cli("--store", url, "init", cwd=example_tree, check=True)
    assert "Moved 2 event(s) from the store's usage_events table" in upgraded.stderr
    assert _schema_and_tables(store) == (7, set(), None)
    out = run_cli("--store", url, "invoices", "--customer", "widgetsexpress", "--start", "2024-11-01T00:00:00Z",
                  "--end", "2024-12-01T00:00:00Z", "--format", "json", cwd=example_tree, check=True)
    _scheduled, november = json.loads(out.stdout)["invoices"]
    # As tests/e2e/test_rating_cli.py: 1200 h = 1000 × 10 + 200 × 8 = 11600 cents (cloud, paid by the
    # commit) + 10 GB × 9 = 90 (not cloud): subtotal 11690, total 90. Mutation caught: init dropping
    # the table without moving its events (0 and 0).
    assert (november["type"], november["subtotal"], november["total"]) == ("USAGE", "11690", "90")


def test_on_postgresql_no_event_can_be_added_between_the_move_and_the_drop(postgres_url, tmp_path):
    # An older release's ingest may still be writing to usage_events while init upgrades the store:
    # a row added after the move would be dropped unmoved. init locks the table against writers
    # from its read to its commit. Mutation caught: the LOCK TABLE left out (the insert goes through).
    store = _old_store(postgres_url, _events(5))
    move = mover(postgres_url, tmp_path / "events.duckdb")

    def move_then_another_writer(conn) -> bool:
        moved = move(conn)
        other = create_engine(postgres_url)
        try:
            with other.connect() as writer:
                writer.execute(text("SET lock_timeout = '300ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    writer.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, "
                                        "timestamp, ts_epoch, properties) VALUES ('late', 'acme', 'api_call', "
                                        "now(), 0, '{}')"))
        finally:
            other.dispose()
        return moved

    store.init(move_events=move_then_another_writer)
    assert _schema_and_tables(store) == (7, set(), None)
    assert _count_and_hours(tmp_path / "events.duckdb") == (5, Decimal("2.5"))  # (0+1+2+3+4)/4
