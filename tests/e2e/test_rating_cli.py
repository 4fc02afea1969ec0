"""`ingest` and `invoices` as real subprocesses on a SQLite store loaded with the example account."""

from __future__ import annotations

import json

from tests.conftest import run_cli

EVENTS = "\n".join([
    '{"transaction_id": "t-1", "customer_id": "widgets-express-prod", "event_type": "compute", '
    '"timestamp": "2024-11-04T10:00:00Z", "properties": {"region": "US", "hours": 1200}}',
    "this is not json",
    '{"transaction_id": "t-2", "customer_id": "widgetsexpress", "event_type": "data_export", '
    '"timestamp": "2024-11-05T10:00:00Z", "properties": {"region": "US", "gb": 10}}',
    '{"transaction_id": "t-3", "customer_id": "not-yet-a-customer", "event_type": "api_call", '
    '"timestamp": "2024-11-05T10:00:00Z", "properties": {"region": "US"}}',
]) + "\n"


def test_ingest_then_invoices_from_the_applied_store(example_tree):
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    (example_tree / "events.jsonl").write_text(EVENTS)

    first = run_cli("ingest", "events.jsonl", cwd=example_tree)
    assert first.returncode == 1  # one bad line
    assert "events.jsonl:line 2: not valid JSON" in first.stderr
    assert "Ingested 3 event(s); 0 duplicate(s) ignored; 1 bad line(s)." in first.stdout

    again = run_cli("ingest", "events.jsonl", cwd=example_tree)
    assert "Ingested 0 event(s); 3 duplicate(s) ignored" in again.stdout
    # The properties the applied metrics read got columns (events.columns): the example catalog's
    # metrics read region (group key / filter), hours and gb (sums). Mutation caught: ingest not
    # telling the events file the store's metrics.
    import duckdb

    with duckdb.connect(str(example_tree / ".billing-reconciler" / "events.duckdb"), read_only=True) as con:
        kept = {k for (k,) in con.execute("SELECT key FROM event_columns").fetchall()}
        assert {"region", "hours", "gb"} <= kept
        (n,) = con.execute("SELECT n FROM event_columns WHERE key = 'hours'").fetchone()
        assert con.execute(f"SELECT p{n}_n FROM usage_events WHERE transaction_id = 't-1'").fetchone() == (1200,)

    out = run_cli("invoices", "--customer", "widgetsexpress", "--start", "2024-11-01T00:00:00Z",
                  "--end", "2024-12-01T00:00:00Z", "--format", "json", cwd=example_tree, check=True)
    doc = json.loads(out.stdout)
    scheduled, november = doc["invoices"]
    # Nov 1: platform fee 100000 + prepaid commit 1000000.
    assert (scheduled["type"], scheduled["total"]) == ("SCHEDULED", "1100000")
    # November: 1200 h = 1000 × 10 + 200 × 8 = 11600 (cloud, paid by the commit) + 10 GB × 9 = 90
    # (not cloud): subtotal 11690, total 90. (No override in the example manifests.)
    assert (november["type"], november["subtotal"], november["total"]) == ("USAGE", "11690", "90")
    assert november["start_timestamp"] == "2024-11-01T00:00:00Z"
    assert doc["unattributed_customer_ids"] == ["not-yet-a-customer"]

    text = run_cli("invoices", "--customer", "widgetsexpress", "--end", "2024-12-01", cwd=example_tree, check=True)
    assert "widgetsexpress / widgetsexpress-2024  USAGE" in text.stdout
    assert "$0.90" in text.stdout


def test_invoices_refuse_an_unknown_customer_and_an_uninitialised_store(example_tree):
    missing = run_cli("invoices", cwd=example_tree)
    assert missing.returncode == 1
    run_cli("init", cwd=example_tree, check=True)
    unknown = run_cli("invoices", "--customer", "nope", "--from-manifests", cwd=example_tree)
    assert unknown.returncode == 1 and "unknown customer" in unknown.stderr


def test_a_second_writer_is_told_the_events_file_is_busy(example_tree):
    import subprocess
    import sys

    run_cli("init", cwd=example_tree, check=True)
    (example_tree / "events.jsonl").write_text(EVENTS)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "time.sleep(60)", str(example_tree / ".billing-reconciler" / "events.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        busy = run_cli("ingest", "events.jsonl", cwd=example_tree)
        reading = run_cli("invoices", "--from-manifests", cwd=example_tree)
    finally:
        holder.kill()
        holder.wait()
    for result in (busy, reading):
        assert result.returncode == 1
        assert "is in use by another billing-reconciler process" in result.stderr
        assert "Traceback" not in result.stderr
    assert run_cli("ingest", "events.jsonl", cwd=example_tree).returncode == 1  # its bad line; the file is free


def test_invoices_read_an_events_file_in_place(example_tree):
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    (example_tree / "events.jsonl").write_text(EVENTS.replace("this is not json\n", ""))
    args = ("invoices", "--customer", "widgetsexpress", "--end", "2024-12-01", "--format", "json")
    from_file = run_cli(*args, "--events", "events.jsonl", cwd=example_tree, check=True)
    assert run_cli("invoices", "--events", "events.jsonl", "--end", "2024-12-01", cwd=example_tree).returncode == 0
    stored = json.loads(run_cli(*args, cwd=example_tree, check=True).stdout)
    assert stored["invoices"][1]["total"] == "0"  # nothing ingested: no usage billed
    in_place = json.loads(from_file.stdout)
    assert (in_place["invoices"][1]["subtotal"], in_place["invoices"][1]["total"]) == ("11690", "90")
    (example_tree / "bad.jsonl").write_text(EVENTS)
    bad = run_cli(*args, "--events", "bad.jsonl", cwd=example_tree)
    assert bad.returncode == 1 and "bad.jsonl:line 2: not valid JSON" in bad.stderr


def test_a_postgresql_store_needs_an_events_path(postgres_url, tmp_path):
    (tmp_path / "events.jsonl").write_text(EVENTS)
    run_cli("--store", postgres_url, "init", cwd=tmp_path, check=True)
    missing = run_cli("--store", postgres_url, "ingest", "events.jsonl", cwd=tmp_path)
    assert missing.returncode == 1 and "--events-db PATH" in missing.stderr and "Traceback" not in missing.stderr
    named = run_cli("--store", postgres_url, "ingest", "events.jsonl", cwd=tmp_path,
                    env={"BILLING_RECONCILER_EVENTS_DB": str(tmp_path / "shared" / "events.duckdb")})
    assert "Ingested 3 event(s)" in named.stdout


def test_an_ingest_killed_midway_and_run_again_counts_every_event_once(tmp_path):
    import signal
    import subprocess
    import time

    import duckdb

    from tests.conftest import cli_command

    n = 400_000
    with (tmp_path / "big.jsonl").open("w") as f:
        for i in range(n):
            f.write(f'{{"transaction_id": "k{i}", "customer_id": "c{i % 50}", "event_type": "api_call", '
                    f'"timestamp": "2024-11-{1 + i % 28:02d}T10:00:00Z", "properties": {{"n": {i % 7}}}}}\n')
    run_cli("init", cwd=tmp_path, check=True)
    db = tmp_path / ".billing-reconciler" / "events.duckdb"
    for delay in (0.3, 1.5):  # while DuckDB reads the file, and later (staging or inserting)
        proc = subprocess.Popen([*cli_command(), "ingest", "big.jsonl"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = run_cli("ingest", "big.jsonl", cwd=tmp_path, check=True)
    assert "duplicate(s) ignored; 0 bad line(s)." in again.stdout
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT transaction_id), sum((properties->>'n')::INT) "
                       "FROM usage_events").fetchone() == (n, n, sum(i % 7 for i in range(n)))
    con.close()
