"""`--events-db DIR`: the events as Parquet files in a directory (what a team shares, what Spark
reads in place). Ingest dedupes against the files already there, writes whole files only, one
writer at a time; rating over the directory equals rating over a DuckDB events file."""

from __future__ import annotations

import json

import pytest

from billing_reconciler.events.billing import rate_store
from billing_reconciler.events.engine import EventsBusy, close, connect, events_path
from billing_reconciler.events.ingest import ingest_file
from billing_reconciler.rating.timegrid import ts
from tests.conftest import run_cli
from tests.rating.helpers import state


def _line(tx: str, ref: str, when: str, **props) -> str:
    return json.dumps({"transaction_id": tx, "customer_id": ref, "event_type": "compute", "timestamp": when,
                       "properties": {"region": "US", **props}})


FIRST = [_line("a", "widgets-express-prod", "2024-11-03T10:00:00Z", hours=700),
         _line("b", "widgetsexpress", "2024-11-04T10:00:00Z", hours=500),
         _line("a", "widgetsexpress", "2024-11-05T10:00:00Z", hours=999),  # same id: the first one counts
         "not json"]
SECOND = [_line("b", "widgetsexpress", "2024-11-04T10:00:00Z", hours=500),  # stored already
          _line("c", "widgets-express-prod", "2024-12-02T10:00:00Z", hours=40.25)]


def _ingest(target, tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    con = connect(target)
    try:
        return ingest_file(con, path, "jsonl")
    finally:
        close(con)


def test_a_directory_keeps_parquet_files_deduped_and_rates_like_a_duckdb_file(tmp_path):
    directory = tmp_path / "events"
    directory.mkdir()
    first = _ingest(directory, tmp_path, "1.jsonl", FIRST)
    assert (first.read, first.inserted, [e.line for e in first.errors]) == (3, 2, [4])
    second = _ingest(directory, tmp_path, "2.jsonl", SECOND)
    assert (second.read, second.inserted) == (2, 1)
    again = _ingest(directory, tmp_path, "2.jsonl", SECOND)
    assert (again.read, again.inserted) == (2, 0)
    files = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    assert len(files) == 2 and all(f.endswith(".parquet") for f in files)  # nothing new: no file

    con = connect(directory, read_only=True)
    rows = con.execute('SELECT transaction_id, properties ->> \'$.hours\' FROM usage_events ORDER BY 1').fetchall()
    assert rows == [("a", "700"), ("b", "500"), ("c", "40.25")]

    duck = tmp_path / "events.duckdb"
    _ingest(duck, tmp_path, "1.jsonl", FIRST)
    _ingest(duck, tmp_path, "2.jsonl", SECOND)
    file_con = connect(duck, read_only=True)
    until = ts("2025-01-01T00:00:00Z")
    (from_dir,) = rate_store(con, state(), until)
    (from_file,) = rate_store(file_con, state(), until)
    assert [i.to_json() for i in from_dir.invoices] == [i.to_json() for i in from_file.invoices]
    # November: 700 + 500 = 1200 hours = 1000 × 10 + 200 × 8 = 11600 (the example account: no override).
    nov = [i for i in from_dir.invoices if i.type == "USAGE"][0]
    assert nov.subtotal == 11600
    close(con)
    close(file_con)


def test_a_killed_ingests_leftover_is_never_read_and_the_rerun_counts_once(tmp_path):
    directory = tmp_path / "events"
    directory.mkdir()
    # What a run killed while writing leaves: a hidden temporary file, half written.
    (directory / ".events-20250101T000000-dead.parquet.tmp").write_bytes(b"PAR1 half a file")
    result = _ingest(directory, tmp_path, "1.jsonl", FIRST[:2])
    rerun = _ingest(directory, tmp_path, "1.jsonl", FIRST[:2])
    assert (result.inserted, rerun.inserted) == (2, 0)
    con = connect(directory, read_only=True)
    assert con.execute("SELECT count(*) FROM usage_events").fetchone() == (2,)
    close(con)


def test_one_writer_at_a_time(tmp_path):
    directory = tmp_path / "events"
    directory.mkdir()
    writer = connect(directory)
    with pytest.raises(EventsBusy, match="in use by another billing-reconciler process"):
        connect(directory)
    reader = connect(directory, read_only=True)  # readers take no lock
    close(reader)
    close(writer)
    close(connect(directory))  # released


def test_a_path_ending_in_a_slash_is_a_directory(tmp_path):
    path = events_path("sqlite:///x.db", f"{tmp_path}/shared/")
    assert path.is_dir()
    con = connect(path)
    close(con)
    assert (path / ".lock").exists()


def test_ingest_and_invoices_over_a_parquet_directory_from_the_cli(example_tree):
    env = {"BILLING_RECONCILER_EVENTS_DB": "team-events/"}
    run_cli("init", cwd=example_tree, env=env, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, env=env, check=True)
    (example_tree / "events.jsonl").write_text("\n".join(FIRST[:3]) + "\n")
    out = run_cli("ingest", "events.jsonl", cwd=example_tree, env=env, check=True)
    assert "Ingested 2 event(s); 1 duplicate(s) ignored; 0 bad line(s)." in out.stdout
    assert not (example_tree / ".billing-reconciler" / "events.duckdb").exists()
    assert len(list((example_tree / "team-events").glob("*.parquet"))) == 1
    doc = json.loads(run_cli("invoices", "--customer", "widgetsexpress", "--end", "2024-12-01", "--format", "json",
                             cwd=example_tree, env=env, check=True).stdout)
    # 1200 hours as above: 11600, paid by the prepaid commit (cloud): total 0.
    november = doc["invoices"][1]
    assert (november["subtotal"], november["total"]) == ("11600", "0")
