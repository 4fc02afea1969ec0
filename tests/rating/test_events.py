"""Event files into DuckDB: bad lines reported by number and skipped, the fast path and the line
path agree, idempotent ingest, exactness refused at ingest, SQL aggregation equals the reference."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from billing_reconciler.events import ingest as ingest_module
from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import rate_store
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest, ingest_file
from billing_reconciler.events.parse import parse_text
from billing_reconciler.rating import MetricQuery, aggregate_events

GOOD = '{"transaction_id": "t-%d", "customer_id": "acme-prod", "event_type": "api_call", ' \
       '"timestamp": "2025-01-0%dT10:00:00Z", "properties": {"region": "US"}}'


def line(tx: str, ts: str = "2025-01-01T10:00:00Z", **properties) -> str:
    return json.dumps({"transaction_id": tx, "customer_id": "acme", "event_type": "x", "timestamp": ts,
                       "properties": properties})


def raw(tx: str, number: str) -> str:
    """A line whose property v is the JSON number text given (json.dumps would write floats)."""
    return line(tx, v=0).replace('"v": 0', f'"v": {number}')


@pytest.fixture
def events_db(tmp_path):
    con = connect(tmp_path / "events.duckdb")
    yield con
    con.close()


def stored(con) -> list[tuple]:
    """The stored events, properties parsed (17.0 and 17 are the same number)."""
    rows = con.execute('SELECT transaction_id, customer_ref, epoch_us("timestamp"), properties::VARCHAR '
                       "FROM usage_events ORDER BY transaction_id").fetchall()
    return [(*r[:3], json.loads(r[3], parse_float=Decimal) if r[3] else None) for r in rows]


def test_bad_lines_are_reported_by_number_and_good_lines_kept():
    text = "\n".join([
        GOOD % (1, 1),
        "{not json",
        '{"transaction_id": "t-2", "customer_id": "acme-prod", "event_type": "api_call"}',
        '{"transaction_id": "t-3", "customer_id": "acme-prod", "event_type": "x", "timestamp": "2025-01-01T00:00:00"}',
        "",
        GOOD % (4, 2),
        '[1, 2]',
    ])
    events, errors = parse_text(text)
    assert [e.transaction_id for e in events] == ["t-1", "t-4"]
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (2, "not valid JSON"), (3, "missing field(s)"), (4, "timestamp '2025-01-01T00"), (7, "expected a JSON object, got list")]


def test_a_timestamp_without_zone_and_an_impossible_date_are_told_apart():
    _, errors = parse_text("\n".join([line("a", "2025-01-01T00:00:00"), line("b", "2025-02-31T00:00:00Z"),
                                      line("c", "yesterday")]))
    assert [e.message for e in errors] == [
        "timestamp '2025-01-01T00:00:00' has no timezone (e.g. 2024-11-03T10:00:00Z)",
        "timestamp '2025-02-31T00:00:00Z' has an invalid date (2025-02-31 does not exist)",
        "timestamp 'yesterday' is not an RFC 3339 time with a timezone (e.g. 2024-11-03T10:00:00Z)"]


def test_csv_columns_become_properties():
    text = "transaction_id,customer_id,event_type,timestamp,region,properties\n" \
           't-1,acme,compute,2025-01-01T00:00:00Z,US,"{""hours"": 2.5}"\n' \
           "t-2,acme,compute,not-a-time,US,\n"
    events, errors = parse_text(text, "csv")
    assert events[0].properties == {"hours": Decimal("2.5"), "region": "US"}
    assert [e.line for e in errors] == [3]


def test_a_bad_file_keeps_its_good_lines_and_names_the_bad_ones(events_db, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([line("a", v=1), "{oops", line("b", "2025-02-31T00:00:00Z"), raw("c", "1e400"),
                               line("d", v=2), ""]) + "\n")
    result = ingest_file(events_db, path, "jsonl")
    assert [(e.line, e.message.split(" ")[0]) for e in result.errors] == [(2, "not"), (3, "timestamp"), (4, "properties.v:")]
    message = result.errors[2].message  # the one bound (billing_reconciler.bounds), named with its field
    assert message.startswith("properties.v: ") and message.endswith(
        "is too large: numbers may have at most 15 significant digits, at most 9 after the decimal point, "
        "and must be less than 10^15 in magnitude")
    assert (result.read, result.inserted) == (2, 2)
    assert [r[0] for r in stored(events_db)] == ["a", "d"]


@pytest.mark.parametrize("value, ok", [  # billing_reconciler.bounds: 15 significant digits, 9 places, < 10^15
    ("999999999999999", True),               # 15 digits
    ("1000000000000000", False),             # 10^15
    ("1234567890123456789012345678901234567890", False),
    ("123456789012.123", True),              # 15 significant digits: a double keeps it
    ("1234567890123.123", False),            # 16
    ("0.000000001", True),                   # 9 places
    ("0.0000000001", False),                 # 10
    ("1e400", False), ("NaN", False), ("-Infinity", False),
    ("2.50", True), ("1e3", True),
])
def test_numbers_the_engine_cannot_sum_exactly_are_refused_at_ingest(events_db, tmp_path, value, ok):
    path = tmp_path / "events.jsonl"
    path.write_text(raw("a", value) + "\n" + line("b", v=1) + "\n")
    result = ingest_file(events_db, path, "jsonl")
    assert [e.line for e in result.errors] == ([] if ok else [1])
    assert result.inserted == (2 if ok else 1)
    if ok:
        q = MetricQuery("v", "SUM", "v", None, None, (), ())
        rows = aggregate(events_db, [q], [datetime(2025, 1, 1, tzinfo=timezone.utc),
                                          datetime(2025, 1, 2, tzinfo=timezone.utc)]).rows
        assert rows == {"v": {"acme": {(0, ()): Decimal(value) + 1}}}


def test_a_clean_file_never_goes_through_the_python_parser(events_db, tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(GOOD % (i, 1 + i % 5) for i in range(1, 50)) + "\n")

    def refuse(*_args, **_kw):
        raise AssertionError("the line path ran on a clean file")

    monkeypatch.setattr(ingest_module, "parse_file", refuse)
    assert ingest_file(events_db, path, "jsonl").inserted == 49


ODD_LINES = [
    line("esc\u00e9", v=1),                                   # an escaped id: the line path decodes it
    line("tab", v=1).replace('"tab"', '"\\t"'),               # an id of whitespace only: refused
    line("off", "2025-01-01T12:00:00+0200", v=2),             # an offset without colon: Python reads it
    raw("exp", "2.5e2"),                                      # exponent notation: exact, 250
    line("extra", v=1)[:-1] + ', "other": 1}',                # an unknown field: refused
    raw("nested", '1, "o": {"deep": 1.5}'),
    line("dup", v=1), line("dup", v=9),                       # the first occurrence wins
    '{"transaction_id": "nop", "customer_id": "acme", "event_type": "x", "timestamp": "2025-01-01T10:00:00Z"}',
    line("space", "2025-01-01 10:00:00.123456Z", v=0.25),
]


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_path_and_the_line_path_store_the_same_events(tmp_path, seed):
    rnd = random.Random(seed)
    clean = [line(f"c{i}", f"2025-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", v=rnd.randrange(100) / 4,
                  region=rnd.choice(["US", "EU"])) for i in range(40)]
    mixed = clean + rnd.sample(ODD_LINES, rnd.randrange(1, len(ODD_LINES)))
    rnd.shuffle(mixed)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(mixed) + "\n")
    fast = connect(tmp_path / "fast.duckdb")
    slow = connect(tmp_path / "slow.duckdb")
    got_fast = ingest_file(fast, a, "jsonl")
    events, errors = parse_text(a.read_text())
    got_slow = ingest(slow, events)
    assert [(e.line, e.message) for e in got_fast.errors] == [(e.line, e.message) for e in errors]
    assert (got_fast.read, got_fast.inserted) == (got_slow.read, got_slow.inserted)
    assert stored(fast) == stored(slow)
    # And the clean lines alone take the fast path to the same rows.
    b.write_text("\n".join(clean) + "\n")
    only_clean = connect(tmp_path / "clean.duckdb")
    ingest_file(only_clean, b, "jsonl")
    assert stored(only_clean) == [r for r in stored(slow) if r[0].startswith("c")]


@pytest.mark.parametrize("odd", [*ODD_LINES, line("extra2", v=1)[:-1] + ', "o": {"p": {"q": 1}}}',
                                 line("spaced", v=1).replace('"event_type":', '"event_type" :'),
                                 line("k", v=1).replace('"properties": {"v": 1}', '"properties": null'),
                                 '{"transaction_id": "dk", "transaction_id": "dk2", "customer_id": "a", '
                                 '"event_type": "x", "timestamp": "2025-01-01T10:00:00Z"}'])
def test_each_odd_line_alone_among_clean_ones_is_read_as_python_reads_it(tmp_path, odd):
    lines = [line(f"c{i}", v=i) for i in range(5)]
    lines.insert(2, odd)
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    fast = connect(tmp_path / "fast.duckdb")
    got = ingest_file(fast, path, "jsonl")
    events, errors = parse_text(path.read_text())
    slow = connect(tmp_path / "slow.duckdb")
    ingest(slow, events)
    assert [(e.line, e.message) for e in got.errors] == [(e.line, e.message) for e in errors]
    assert stored(fast) == stored(slow)


def test_odd_lines_mean_what_the_python_parser_says(events_db, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(ODD_LINES) + "\n")
    result = ingest_file(events_db, path, "jsonl")
    assert [e.line for e in result.errors] == [2, 5]
    rows = {r[0]: r for r in stored(events_db)}
    assert set(rows) == {"esc\u00e9", "off", "exp", "nested", "dup", "nop", "space"}
    assert rows["off"][2] == int(datetime(2025, 1, 1, 10, tzinfo=timezone.utc).timestamp()) * 1_000_000
    assert rows["dup"][3] == {"v": 1}
    assert rows["exp"][3] == {"v": 250}


def test_reingesting_the_same_events_changes_nothing(events_db, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(GOOD % (i, 1 + i % 5) for i in range(1, 50)) + "\n")
    first = ingest_file(events_db, path, "jsonl")
    with path.open("a") as f:
        f.write("\n".join(GOOD % (i, 1) for i in (1, 2, 3)) + "\n")
    second = ingest_file(events_db, path, "jsonl")
    assert (first.inserted, first.duplicates) == (49, 0)
    assert (second.inserted, second.duplicates) == (0, 52)
    events, _ = parse_text(path.read_text())
    assert ingest(events_db, events).inserted == 0


def test_csv_is_ingested_with_line_numbers(events_db, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("transaction_id,customer_id,event_type,timestamp,region,properties\n"
                    't-1,acme,compute,2025-01-01T00:00:00Z,US,"{""hours"": 2.5}"\n'
                    "t-2,acme,compute,2025-02-31T00:00:00Z,US,\n"
                    't-3,acme,compute,2025-01-01T00:00:00Z,EU,"{""hours"": 1e400}"\n'
                    "t-4,acme,compute,2025-01-02T00:00:00Z,EU,\n")
    result = ingest_file(events_db, path, "csv")
    assert [e.line for e in result.errors] == [3, 4]
    assert [(r[0], r[3]) for r in stored(events_db)] == [
        ("t-1", {"hours": Decimal("2.5"), "region": "US"}), ("t-4", {"region": "EU"})]


def _events(n):
    lines = []
    for i in range(n):
        props = {0: '{"region": "US", "hours": 1.25}', 1: '{"region": "EU", "hours": 3}', 2: '{"hours": 0.1}',
                 3: '{"region": "US", "hours": "x"}', 4: '{"region": 7}'}[i % 5]
        lines.append(f'{{"transaction_id": "t-{i}", "customer_id": "c{i % 3}", "event_type": '
                     f'"{"compute" if i % 4 else "api_call"}", "timestamp": "2025-01-{1 + i % 28:02d}T0{i % 10}:00:00Z",'
                     f' "properties": {props}}}')
    return lines


@pytest.mark.parametrize("aggregation", ["COUNT", "SUM", "MAX", "UNIQUE", "LATEST"])
def test_sql_aggregation_equals_reference_aggregation(events_db, tmp_path, aggregation):
    lines = _events(200)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ingest_file(events_db, path, "jsonl")
    events = parse_text("\n".join(lines))[0]
    spec = {"name": "m", "aggregation_type": aggregation, "event_type_filter": {"in_values": ["compute"]}}
    if aggregation != "COUNT":
        spec["aggregation_key"] = "hours" if aggregation != "UNIQUE" else "region"
    spec["property_filters"] = [{"name": "region", "not_in_values": ["EU"]}]
    q = MetricQuery.from_spec("m", spec, ["region"])
    cuts = [datetime(2025, 1, d, tzinfo=timezone.utc) for d in (1, 10, 20, 29)]
    expected = aggregate_events(events, [q], cuts)
    got = aggregate(events_db, [q], cuts)
    assert got.rows == expected.rows


def test_rating_from_the_store_matches_rating_in_memory(events_db):
    from billing_reconciler.rating import rate_events

    from .helpers import ev, state
    events = [ev("widgets-express-prod", "compute", f"2024-11-{d:02d}T00:00:00Z", region="US", hours=d * 10)
              for d in range(1, 29)]
    ingest(events_db, events)
    st = state()
    until = datetime(2025, 1, 1, tzinfo=timezone.utc)
    (from_store,) = rate_store(events_db, st, until)
    in_memory = rate_events(st, events, until)
    assert [i.to_json() for i in from_store.invoices] == [i.to_json() for i in in_memory.invoices]


def test_parquet_rows_are_checked_in_sql_and_bad_ones_named_by_row(events_db, tmp_path):
    path = tmp_path / "events.parquet"
    src = connect(":memory:")
    src.execute("""COPY (SELECT * FROM (VALUES
        ('p1', 'acme', 'x', TIMESTAMPTZ '2025-01-01 10:00:00+00', '{"v": 1.5, "region": "US"}'),
        ('p2', '', 'x', TIMESTAMPTZ '2025-01-01 10:00:00+00', '{}'),
        ('p3', 'acme', 'x', NULL, '{}'),
        ('p4', 'acme', 'x', TIMESTAMPTZ '2025-01-01 11:00:00+00', '{"v": 1e400}'),
        ('p5', 'acme', 'x', TIMESTAMPTZ '2025-01-01 12:00:00+00', '{"v": 123456789012345}'),
        ('p1', 'acme', 'x', TIMESTAMPTZ '2025-01-02 10:00:00+00', '{"v": 7}'))
        AS t(transaction_id, customer_id, event_type, "timestamp", properties)) TO '%s' (FORMAT parquet)""" % path)
    result = ingest_file(events_db, path, "parquet")
    assert [(e.line, e.message[:25]) for e in result.errors] == [
        (2, "customer_id must be a non-empty string"[:25]), (3, "timestamp is missing"),
        (4, "properties.v: 10000000000")]  # 1e400: beyond billing_reconciler.bounds
    assert (result.read, result.inserted) == (3, 2)  # p1 twice: the first row wins
    assert [(r[0], r[3]) for r in stored(events_db)] == [
        ("p1", {"v": Decimal("1.5"), "region": "US"}), ("p5", {"v": 123456789012345})]
