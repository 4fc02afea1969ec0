"""CSV through DuckDB's reader: a clean file is stored without the line parser, with the same
events the line parser would store; a doubtful one takes the line path (bad rows named by line,
good rows kept); duplicates within the file and against stored events count once; a byte order
mark is accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_reconciler.events import ingest as ingest_module
from billing_reconciler.events.engine import close, connect
from billing_reconciler.events.ingest import ingest_file

HEADER = "transaction_id,customer_id,event_type,timestamp,region,properties\n"
CLEAN = (HEADER
         + 't-1,acme,compute,2025-01-01T00:00:00Z,US,"{""hours"": 2.5, ""region"": ""EU""}"\n'  # the column wins
         + "t-2,acme,compute,2025-01-02T00:00:00+02:00,,\n"
         + 't-1,acme,compute,2025-01-03T00:00:00Z,EU,"{""hours"": 99}"\n'  # a duplicate id: the first counts
         + 't-3,acme alias,api_call,2025-01-04T10:30:00.25Z,"APAC, east","{""n"": -3, ""tags"": [1, {""a"": null}]}"\n')


def stored(con) -> list[tuple]:
    from billing_reconciler.canonical import loads

    return [(tx, ref, kind, ts.isoformat(), loads(props)) for tx, ref, kind, ts, props in con.execute(
        'SELECT transaction_id, customer_ref, event_type, "timestamp", properties::VARCHAR FROM usage_events '
        "ORDER BY transaction_id").fetchall()]


@pytest.fixture
def line_path_refused(monkeypatch):
    def refuse(*_args, **_kw):
        raise AssertionError("the clean CSV went through the line parser")

    monkeypatch.setattr(ingest_module, "parse_file", refuse)


def _ingest(tmp_path, name, data: bytes, fmt="csv"):
    path = tmp_path / name
    path.write_bytes(data)
    con = connect(tmp_path / f"{name}.duckdb")
    return con, ingest_file(con, path, fmt)


def test_a_clean_csv_is_read_by_duckdb_and_stores_what_the_line_parser_stores(tmp_path, monkeypatch):
    # The same file through the line path (the fast path switched off) is the expected result.
    from billing_reconciler.events import csv_ingest

    with monkeypatch.context() as m:
        m.setattr(csv_ingest, "stage_csv", lambda *a, **k: False)
        slow_con, slow = _ingest(tmp_path, "slow.csv", CLEAN.encode())
    expected = stored(slow_con)

    def refuse(*_args, **_kw):
        raise AssertionError("the clean CSV went through the line parser")

    monkeypatch.setattr(ingest_module, "parse_file", refuse)
    fast_con, fast = _ingest(tmp_path, "fast.csv", b"\xef\xbb\xbf" + CLEAN.encode())  # with a BOM
    assert (fast.read, fast.inserted, fast.errors) == (slow.read, slow.inserted, slow.errors) == (4, 3, [])
    assert stored(fast_con) == expected
    # By hand: t-1 keeps the first row, the region column over the JSON's; t-2 has no properties;
    # the timestamp +02:00 is 2025-01-01T22:00Z.
    assert expected[0][4] == {"hours": Decimal("2.5"), "region": "US"}
    assert expected[1][3:] == ("2025-01-01T22:00:00+00:00", {})
    assert expected[2][4] == {"n": -3, "tags": [1, {"a": None}], "region": "APAC, east"}
    close(slow_con)
    close(fast_con)


@pytest.mark.parametrize("bad_row, message", [
    ("t-9,acme,compute,2025-02-31T00:00:00Z,US,", "invalid"),                  # an impossible date
    ("t-9,acme,compute,2025-01-01T00:00:00,US,", "zone"),                      # no zone
    ('t-9,acme,compute,2025-01-01T00:00:00Z,US,"{""v"": 1e400}"', "properties.v"),
    ("t-9,acme,compute,2025-01-01T00:00:00Z,US,,extra", "more values"),
    ("t-9,,compute,2025-01-01T00:00:00Z,US,", "customer_id"),
])
def test_a_bad_row_is_named_by_line_and_the_good_rows_are_kept(tmp_path, bad_row, message):
    text = HEADER + "t-1,acme,compute,2025-01-01T00:00:00Z,US,\n" + bad_row + "\n" + \
        "t-2,acme,compute,2025-01-02T00:00:00Z,EU,\n"
    con, result = _ingest(tmp_path, "bad.csv", text.encode())
    assert [e.line for e in result.errors] == [3]
    assert message in result.errors[0].message
    assert [r[0] for r in stored(con)] == ["t-1", "t-2"]
    close(con)


def test_rows_stored_before_count_once(tmp_path, line_path_refused):
    path = tmp_path / "again.csv"
    path.write_text(CLEAN)
    con = connect(tmp_path / "events.duckdb")
    first = ingest_file(con, path, "csv")
    again = ingest_file(con, path, "csv")
    assert (first.inserted, again.read, again.inserted) == (3, 4, 0)
    close(con)
