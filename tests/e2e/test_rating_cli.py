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
