"""The usage rollup written at ingest gives exactly what aggregating every event gives: in SQL over
the raw JSON (`use_rollup=False`) and in memory (the reference, `aggregate_events`), across int,
decimal, string, boolean, null and missing property values, cut points inside days, events the
rollup has not seen yet, and properties it stopped keeping."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from billing_reconciler.events import rollup_read, shapes
from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import open_engine
from billing_reconciler.events.buckets import Buckets
from billing_reconciler.events.ingest import ingest
from billing_reconciler.money import normalize
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import to_micros
from billing_reconciler.store import Store

START = datetime(2024, 11, 1, tzinfo=timezone.utc)
NAMES = ["p", "q", "r"]
TYPES = ["api_call", "compute", "export"]
REFS = ["acme", "acme-alias", "bright"]
STRINGS = ["a", "b", "c"]

value_st = st.one_of(
    st.integers(-5, 5),
    # Reals with 0 to 9 places (the bound of billing_reconciler.bounds), every digit drawn; in the
    # canonical form events arrive in (an integral value is an int, so no 0E-2 or -0).
    st.sampled_from(range(10)).flatmap(lambda p: st.integers(-10**(4 + p), 10**(4 + p)).map(
        lambda n: normalize(Decimal(n).scaleb(-p)))),
    st.sampled_from(STRINGS),
    st.booleans(),
    st.none(),
)
properties_st = st.dictionaries(st.sampled_from(NAMES), value_st, max_size=3)
MINUTES = 5 * 24 * 60  # events over five days


@st.composite
def events_st(draw, unique_times: bool):
    n = draw(st.integers(1, 40))
    events = []
    for i in range(n):
        # Unique times let the reference (which breaks LATEST ties by input order) be compared.
        minute = i * (MINUTES // 40) + draw(st.integers(0, MINUTES // 40 - 1)) if unique_times else \
            draw(st.integers(0, 8)) * 60 * 11
        # Anywhere inside the minute, to the microsecond (still unique and ordered per slot).
        micros = draw(st.integers(0, 59_999_999)) if unique_times else 0
        events.append(UsageEvent(f"tx-{i:03d}", draw(st.sampled_from(REFS)), draw(st.sampled_from(TYPES)),
                                 START + timedelta(minutes=minute, microseconds=micros), draw(properties_st)))
    return events


@st.composite
def query_st(draw, i: int):
    agg = draw(st.sampled_from(["COUNT", "SUM", "MAX", "UNIQUE", "LATEST"]))
    filters = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)):
        kind = draw(st.sampled_from(["exists", "missing", "in", "not_in"]))
        values = frozenset(draw(st.lists(st.sampled_from(STRINGS), min_size=1, max_size=2, unique=True)))
        filters.append(PropertyFilter(name, exists={"exists": True, "missing": False}.get(kind),
                                      in_values=values if kind == "in" else None,
                                      not_in_values=values if kind == "not_in" else None))
    types = draw(st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True)))
    return MetricQuery(f"m{i}", agg, None if agg == "COUNT" else draw(st.sampled_from(NAMES)),
                       frozenset(types) if types else None, None, tuple(filters),
                       tuple(sorted(draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)))))


@st.composite
def cuts_st(draw):
    # Some cuts on midnight, some inside a day, down to the microsecond: days a cut splits are read
    # from the events.
    minute = 60_000_000
    micros = draw(st.lists(
        st.integers(-60 * minute, (MINUTES + 60) * minute).map(
            lambda u: u if u % 3 else u - u % (1440 * minute)),
        min_size=2, max_size=5, unique=True))
    return [START + timedelta(microseconds=u) for u in sorted(micros)]


queries_st = st.integers(1, 4).flatmap(lambda n: st.tuples(*[query_st(i) for i in range(n)]))


def fresh_store(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('rollup')}/state.db"
    Store(url).init()
    return url


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_st(unique_times=True), queries=queries_st, cuts=cuts_st())
def test_rollup_equals_raw_sql_and_the_reference(tmp_path_factory, events, queries, cuts):
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events)
    got = aggregate(engine, queries, cuts)
    assert got.rows == aggregate(engine, queries, cuts, use_rollup=False).rows
    assert got.rows == aggregate_events(events, queries, cuts).rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_st(unique_times=False), queries=queries_st, cuts=cuts_st(), split=st.integers(0, 40))
def test_same_timestamps_and_ingest_order_do_not_change_the_rollup(tmp_path_factory, events, queries, cuts, split):
    # Many events share a timestamp: LATEST ties go to the greater transaction id on both paths,
    # whatever order and batches the events arrived in.
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events[split:], batch=7)
    ingest(engine, events[:split] + events[split // 2:], batch=5)
    got = aggregate(engine, queries, cuts)
    assert got.rows == aggregate(engine, queries, cuts, use_rollup=False).rows


def _events(n: int, seed: int = 3) -> list[UsageEvent]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        props = {"region": rnd.choice(["US", "EU", None]), "hours": Decimal(rnd.randrange(1, 400)) / 4}
        if i % 5 == 0:
            props["tier"] = rnd.choice([1, 2, "x", True])
        out.append(UsageEvent(f"tx-{i}", rnd.choice(REFS), rnd.choice(TYPES),
                              START + timedelta(seconds=rnd.randrange(0, 5 * 86400)), props))
    return out


QUERIES = (
    MetricQuery("count", "COUNT", None, frozenset({"api_call"}), None, (), ("region",)),
    MetricQuery("hours", "SUM", "hours", frozenset({"compute"}), None,
                (PropertyFilter("hours", exists=True), PropertyFilter("region", not_in_values=frozenset({"EU"}))),
                ("region",)),
    MetricQuery("peak", "MAX", "hours", None, frozenset({"api_call"}), (), ()),
    MetricQuery("regions", "UNIQUE", "region", None, None, (), ()),
    MetricQuery("last", "LATEST", "hours", frozenset({"export"}), None, (), ("region",)),
    MetricQuery("tiers", "COUNT", None, None, None, (), ("tier",)),  # tier is numeric in some events
)


def coverage(engine, queries, cuts) -> rollup_read.Coverage:
    with engine.connect() as conn:
        return rollup_read.read_snapshot(conn.connection.driver_connection, engine.dialect.name == "postgresql",
                                         queries, [to_micros(c) for c in cuts], Buckets(queries))


def test_a_cut_inside_a_day_reads_that_day_from_the_events(tmp_path_factory):
    events = _events(2000)
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events, batch=300)
    cuts = [START, START + timedelta(days=2, hours=13), START + timedelta(days=5)]
    cov = coverage(engine, QUERIES, cuts)
    assert cov.raw_days == [to_micros(cuts[1]) // 86_400_000_000]
    assert [q.metric for q in cov.raw_queries] == ["tiers"]  # grouped by a sometimes-numeric property
    assert aggregate(engine, QUERIES, cuts).rows == aggregate_events(events, QUERIES, cuts).rows


def test_events_an_older_program_wrote_are_read_raw_then_rolled_up_by_the_next_ingest(tmp_path_factory):
    events = _events(600)
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events[:400])
    with engine.begin() as conn:  # no rollup, as a program from before it would write
        for e in events[400:500]:
            conn.execute(text("INSERT INTO usage_events (transaction_id, customer_ref, event_type, timestamp, "
                              "ts_epoch, properties) VALUES (:tx, :ref, :type, :ts, :micros, :props)"),
                         {"tx": e.transaction_id, "ref": e.customer_id, "type": e.event_type, "ts": e.timestamp,
                          "micros": to_micros(e.timestamp), "props": _json(e.properties)})
    cuts = [START, START + timedelta(days=5)]
    assert coverage(engine, QUERIES, cuts).after_id is not None
    assert aggregate(engine, QUERIES, cuts).rows == aggregate_events(events[:500], QUERIES, cuts).rows
    ingest(engine, events[500:])
    assert coverage(engine, QUERIES, cuts).after_id is None
    assert aggregate(engine, QUERIES, cuts).rows == aggregate_events(events, QUERIES, cuts).rows
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(events) FROM usage_rollup")).scalar() == 600


def _json(properties) -> str:
    from billing_reconciler.canonical import dumps
    return dumps(properties)


def test_a_property_with_too_many_values_is_left_out_of_shapes(tmp_path_factory, monkeypatch):
    monkeypatch.setattr(shapes, "VALUE_CAP", 20)
    events = _events(500)
    for i, e in enumerate(events):
        e.properties["request"] = f"req-{i}"  # a new value per event
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events, batch=100)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT excluded FROM usage_rollup_state")).scalar() == '["request"]'
        assert conn.execute(text("SELECT count(*) FROM usage_shapes")).scalar() < 60
    by_request = MetricQuery("requests", "UNIQUE", "request", None, None, (), ())
    queries = (*QUERIES, by_request)
    cuts = [START, START + timedelta(days=5)]
    assert [q.metric for q in coverage(engine, queries, cuts).raw_queries] == ["tiers", "requests"]
    assert aggregate(engine, queries, cuts).rows == aggregate_events(events, queries, cuts).rows


def test_reingest_leaves_the_rollup_unchanged(tmp_path_factory):
    events = _events(300)
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events)

    def dump():
        with engine.connect() as conn:
            return conn.execute(text("SELECT * FROM usage_rollup ORDER BY 1, 2, 3, 4")).all()

    before = dump()
    again = ingest(engine, events[::-1] + events[:10], batch=77)
    assert again.inserted == 0
    assert dump() == before


def test_rollup_on_postgresql_equals_raw_sql_and_the_reference(postgres_url):
    Store(postgres_url).init()
    engine = open_engine(postgres_url)
    events = _events(3000)
    ingest(engine, events[:1000], batch=400)
    ingest(engine, events, batch=700)  # overlapping: the first 1000 are duplicates
    for cuts in ([START, START + timedelta(days=5)],
                 [START - timedelta(days=1), START + timedelta(days=1, hours=7), START + timedelta(days=4)]):
        got = aggregate(engine, QUERIES, cuts)
        assert got.rows == aggregate(engine, QUERIES, cuts, use_rollup=False).rows
        assert got.rows == aggregate_events(events, QUERIES, cuts).rows


@pytest.mark.parametrize("value", ["x", 3, Decimal("2.5"), True, None, [1, "a"], {"k": 1}])
def test_a_shape_keeps_non_numeric_values_and_names_the_numeric_ones(value):
    catalog = shapes.ShapeCatalog()
    shape, measures = catalog.shape_of({"v": value, "n": 7})
    kept, names = shapes.parse_shape(shape)
    numeric = isinstance(value, (int, Decimal)) and not isinstance(value, bool)
    assert names == (("n", "v") if numeric else ("n",))
    assert kept == ({} if numeric else {"v": value})
    assert dict(measures) == ({"n": 7, "v": value} if numeric else {"n": 7})
    assert catalog.shape_of({"n": 1, "v": value})[0] == shape  # same shape, other measure value


def test_too_many_combinations_leave_out_the_most_varied_property(monkeypatch):
    monkeypatch.setattr(shapes, "SHAPE_CAP", 100)
    catalog = shapes.ShapeCatalog()
    for a in range(3):
        for b in range(50):
            catalog.shape_of({"a": f"a{a}", "b": f"b{b}", "n": 1})
    assert catalog.excluded == {"b"}
    assert len(catalog.pending) == 101  # a0 and a1 with each b, then a2 alone


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("reverse", [False, True])
def test_latest_ties_go_to_the_greater_transaction_id_on_every_path(tmp_path_factory, request, backend, reverse):
    when = START + timedelta(hours=5)
    events = [UsageEvent(tx, "acme", "seats", when, {"n": n}) for tx, n in
              [("tx-b", 7), ("tx-c", 3), ("tx-a", 9), ("TX-z", 1)]]
    events.append(UsageEvent("tx-0", "acme", "seats", when - timedelta(seconds=1), {"n": 100}))
    q = MetricQuery("seats", "LATEST", "n", None, None, (), ())
    cuts = [START, START + timedelta(days=1)]
    if backend == "sqlite":
        url = fresh_store(tmp_path_factory)
    else:
        url = request.getfixturevalue("postgres_url")
        Store(url).init()
    engine = open_engine(url)
    for e in events[::-1] if reverse else events:
        ingest(engine, [e])
    for use_rollup in (True, False):
        assert aggregate(engine, [q], cuts, use_rollup=use_rollup).rows == \
            {"seats": {"acme": {(0, ()): (to_micros(when), Decimal(3))}}}


def test_transaction_ids_and_values_with_separators_quotes_and_escapes(tmp_path_factory):
    when = START + timedelta(hours=1)
    odd = ['tx "quoted"', "tx \\ back", "tx \x1f\x1e unit", "tx €", "tx\nline"]
    events = [UsageEvent(tx, "acme", "seats", when, {"n": Decimal(i) / 4 if i else 5, "tag": tx})
              for i, tx in enumerate(odd)]
    queries = [MetricQuery("last", "LATEST", "n", None, None, (), ()),
               MetricQuery("total", "SUM", "n", None, None, (), ("tag",)),
               MetricQuery("tags", "UNIQUE", "tag", None, None, (), ())]
    cuts = [START, START + timedelta(days=1)]
    engine = open_engine(fresh_store(tmp_path_factory))
    for e in events:
        ingest(engine, [e])
    got = aggregate(engine, queries, cuts).rows
    assert got["last"] == {"acme": {(0, ()): (to_micros(when), Decimal("0.75"))}}  # "tx €" is the greatest id
    assert got == aggregate(engine, queries, cuts, use_rollup=False).rows


def test_rollup_sums_are_exact_decimals(tmp_path_factory):
    values = [Decimal("0.1234567890123"), Decimal("1e-12"), Decimal("98765432109876543.21"), 3, Decimal("-0.5")]
    events = [UsageEvent(f"t{i}", "acme", "x", START + timedelta(hours=i), {"v": v}) for i, v in enumerate(values)]
    q = MetricQuery("v", "SUM", "v", None, None, (), ())
    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, events[:2])
    ingest(engine, events[2:])
    got = aggregate(engine, [q], [START, START + timedelta(days=1)]).rows
    assert got == {"v": {"acme": {(0, ()): sum(values, Decimal(0))}}}


def test_stored_usage_under_an_unknown_alias_is_billed_once_a_customer_takes_the_alias(tmp_path_factory):
    import copy

    from billing_reconciler.events.billing import rate_store

    from .test_oracles import tiered_state

    engine = open_engine(fresh_store(tmp_path_factory))
    ingest(engine, [UsageEvent(f"a{i}", "tiny-new-alias", "api_call", datetime(2025, 1, 5, i, tzinfo=timezone.utc),
                               {"region": "US"}) for i in range(10)])
    before = tiered_state()
    after = copy.deepcopy(before)
    after.customers["tiny"]["ingest_aliases"] = ["tiny-new-alias"]
    until = datetime(2025, 2, 1, tzinfo=timezone.utc)
    old, new = rate_store(engine, [before, after], until)  # one pass over the rollup serves both
    assert old.unattributed == ["tiny-new-alias"] and old.invoices[0].total == 0
    assert new.unattributed == [] and new.invoices[0].total == Decimal(5)  # 10 calls x 0.5 cents


def test_a_nan_value_does_not_stop_ingest(tmp_path_factory):
    from billing_reconciler.events.parse import parse_text

    events, errors = parse_text('{"transaction_id": "t1", "customer_id": "acme", "event_type": "x", '
                                '"timestamp": "2024-11-01T10:00:00Z", "properties": {"v": NaN, "w": 2}}')
    assert not errors
    engine = open_engine(fresh_store(tmp_path_factory))
    assert ingest(engine, events).inserted == 1
    q = MetricQuery("w", "SUM", "w", None, None, (), ())
    assert aggregate(engine, [q], [START, START + timedelta(days=1)]).rows == {"w": {"acme": {(0, ()): 2}}}
