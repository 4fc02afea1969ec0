"""Event files: bad lines reported by number and skipped; CSV; idempotent ingest; SQL aggregation
equals the in-memory reference aggregation."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import open_engine, rate_store
from billing_reconciler.events.ingest import ingest
from billing_reconciler.events.parse import parse_text
from billing_reconciler.rating import MetricQuery, aggregate_events
from billing_reconciler.store import Store

GOOD = '{"transaction_id": "t-%d", "customer_id": "acme-prod", "event_type": "api_call", ' \
       '"timestamp": "2025-01-0%dT10:00:00Z", "properties": {"region": "US"}}'


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


def test_csv_columns_become_properties():
    text = "transaction_id,customer_id,event_type,timestamp,region,properties\n" \
           't-1,acme,compute,2025-01-01T00:00:00Z,US,"{""hours"": 2.5}"\n' \
           "t-2,acme,compute,not-a-time,US,\n"
    events, errors = parse_text(text, "csv")
    assert events[0].properties == {"hours": Decimal("2.5"), "region": "US"}
    assert [e.line for e in errors] == [3]


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    Store(url).init()
    return url


def test_reingesting_the_same_events_changes_nothing(store_url):
    events, _ = parse_text("\n".join(GOOD % (i, 1 + i % 5) for i in range(1, 50)))
    engine = open_engine(store_url)
    first = ingest(engine, events)
    second = ingest(engine, events + events[:3])
    assert (first.inserted, first.duplicates) == (49, 0)
    assert (second.inserted, second.duplicates) == (0, 52)


def _events(n):
    lines = []
    for i in range(n):
        props = {0: '{"region": "US", "hours": 1.25}', 1: '{"region": "EU", "hours": 3}', 2: '{"hours": 0.1}',
                 3: '{"region": "US", "hours": "x"}', 4: '{"region": 7}'}[i % 5]
        lines.append(f'{{"transaction_id": "t-{i}", "customer_id": "c{i % 3}", "event_type": '
                     f'"{"compute" if i % 4 else "api_call"}", "timestamp": "2025-01-{1 + i % 28:02d}T0{i % 10}:00:00Z",'
                     f' "properties": {props}}}')
    return parse_text("\n".join(lines))[0]


@pytest.mark.parametrize("aggregation", ["COUNT", "SUM", "MAX", "UNIQUE", "LATEST"])
def test_sql_aggregation_equals_reference_aggregation(store_url, aggregation):
    events = _events(200)
    engine = open_engine(store_url)
    ingest(engine, events)
    spec = {"name": "m", "aggregation_type": aggregation, "event_type_filter": {"in_values": ["compute"]}}
    if aggregation != "COUNT":
        spec["aggregation_key"] = "hours" if aggregation != "UNIQUE" else "region"
    spec["property_filters"] = [{"name": "region", "not_in_values": ["EU"]}]
    q = MetricQuery.from_spec("m", spec, ["region"])
    cuts = [datetime(2025, 1, d, tzinfo=timezone.utc) for d in (1, 10, 20, 29)]
    expected = aggregate_events(events, [q], cuts)
    got = aggregate(engine, [q], cuts)
    assert got.rows == expected.rows


def test_rating_from_the_store_matches_rating_in_memory(store_url):
    from billing_reconciler.rating import rate_events

    from .helpers import ev, state
    events = [ev("widgets-express-prod", "compute", f"2024-11-{d:02d}T00:00:00Z", region="US", hours=d * 10)
              for d in range(1, 29)]
    engine = open_engine(store_url)
    ingest(engine, events)
    st = state()
    until = datetime(2025, 1, 1, tzinfo=timezone.utc)
    (from_store,) = rate_store(engine, st, until)
    in_memory = rate_events(st, events, until)
    assert [i.to_json() for i in from_store.invoices] == [i.to_json() for i in in_memory.invoices]
