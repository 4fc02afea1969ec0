"""Property columns (`events.columns`): which keys, the cap, where they are not made. That the
columns mean what the JSON means is proven by tests/rating/test_duckdb_aggregation.py (with and
without columns, given before or after the events)."""

from __future__ import annotations

from datetime import datetime, timezone

from billing_reconciler.events import columns
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest
from billing_reconciler.rating import UsageEvent


def test_the_keys_of_metric_specs_are_their_aggregation_group_and_filter_keys_once_each():
    specs = [
        {"aggregation_type": "SUM", "aggregation_key": "hours", "group_keys": [["region"], ["region", "zone"]],
         "property_filters": [{"name": "hours", "exists": True}, {"name": "tier", "in_values": ["a"]}]},
        {"aggregation_type": "COUNT"},
        {"aggregation_type": "MAX", "aggregation_key": "gb"},
    ]
    assert columns.metric_keys(specs) == ["hours", "region", "zone", "tier", "gb"]


def test_keys_are_given_columns_once_and_no_more_than_the_cap(tmp_path):
    con = connect(tmp_path / "events.duckdb")
    assert columns.ensure(con, ["a", "b", "a"]) == ["a", "b"]
    assert columns.ensure(con, ["b", "c"]) == ["c"]  # b kept its columns
    assert columns.known(con) == {"a": 1, "b": 2, "c": 3}
    many = [f"k{i}" for i in range(columns.MAX_KEYS + 5)]
    columns.ensure(con, many)
    assert len(columns.known(con)) == columns.MAX_KEYS  # the rest are read from the JSON


def test_a_back_fill_reads_the_stored_events(tmp_path):
    # 2.5 + 4 = 6.5 hours stored before the column existed: the back-fill puts them in it.
    con = connect(tmp_path / "events.duckdb")
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ingest(con, [UsageEvent("t1", "c", "compute", when, {"hours": 2.5, "region": "US"}),
                 UsageEvent("t2", "c", "compute", when, {"hours": 4, "region": "EU \\ \"x\""})])
    columns.ensure(con, ["hours", "region"])
    assert con.execute("SELECT sum(p1_n), string_agg(p2_s, '|' ORDER BY p2_s) FROM usage_events").fetchone() == \
        (6.5, 'EU \\ "x"|US')


def test_a_parquet_events_directory_gets_no_columns(tmp_path):
    con = connect(f"{tmp_path}/events/")
    assert columns.ensure(con, ["hours"]) == []
    assert columns.known(con) == {}


def test_a_json_lines_file_fills_the_columns_in_the_same_read_and_its_first_repeat_wins(tmp_path):
    # t1 twice in the file: the first (2 hours) is kept, the repeat (50) is not; t2 adds 0.25.
    # Stored sum 2.25 from the columns, as from the JSON. Mutations caught: the repeat check
    # skipping the window when ids repeat (t1 stored twice: 52.25 or 4 rows), the staged texts
    # taken in another key's order (hours read as region).
    con = connect(tmp_path / "events.duckdb")
    columns.ensure(con, ["region", "hours"])
    lines = [
        '{"transaction_id": "t1", "customer_id": "c", "event_type": "compute", "timestamp": "2025-01-01T00:00:00Z", '
        '"properties": {"hours": 2, "region": "EU"}}',
        '{"transaction_id": "t2", "customer_id": "c", "event_type": "compute", "timestamp": "2025-01-01T00:00:00Z", '
        '"properties": {"region": "US", "hours": 0.25}}',
        '{"transaction_id": "t1", "customer_id": "c", "event_type": "compute", "timestamp": "2025-01-02T00:00:00Z", '
        '"properties": {"hours": 50, "region": "APAC"}}',
    ]
    (tmp_path / "e.jsonl").write_text("\n".join(lines) + "\n")
    from billing_reconciler.events.ingest import ingest_file

    result = ingest_file(con, tmp_path / "e.jsonl", "jsonl")
    assert (result.read, result.inserted, result.errors) == (3, 2, [])
    assert con.execute("SELECT count(*), sum(p2_n), string_agg(p1_s, ',' ORDER BY p1_s), "
                       "sum(CAST(properties ->> 'hours' AS DECIMAL(38, 12))) FROM usage_events").fetchone() == \
        (2, 2.25, "EU,US", 2.25)


def test_duckdb_never_draws_its_own_progress_bar_into_our_output(tmp_path, capfd):
    # A back-fill over millions of events runs for seconds, and DuckDB draws its progress bar on the
    # terminal after 2 s. Here it is asked to draw at once: nothing may appear. Mutation caught:
    # `events.engine.session` no longer turning the printing off.
    con = connect(tmp_path / "events.duckdb")
    con.execute("SET enable_progress_bar = true")
    con.execute("SET progress_bar_time = 0")
    con.execute("SELECT count(*) FROM range(200000000) t(x) WHERE x % 7 = 3").fetchall()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
