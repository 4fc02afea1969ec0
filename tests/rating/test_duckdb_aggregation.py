"""Aggregation in DuckDB equals the pure Python reference (`rating.aggregate_events`) on generated
events, metric queries and cut points; ties, odd ids, exact sums, aliases taken later."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.columns import ensure
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest
from billing_reconciler.money import normalize
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import to_micros

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


def fresh_events(tmp_path_factory, kept=()):
    """A new events file; `kept`: properties given their own columns (events.columns) first."""
    con = connect(tmp_path_factory.mktemp("events") / "events.duckdb")
    ensure(con, kept)
    return con


# Which properties have columns, and whether they got them before the events were stored (filled at
# insert) or after (back-filled): the aggregates must not change. Mutations caught: a column filled
# differently from what the JSON path reads (a string left quoted, a boolean dropped from presence,
# a number's text used as its group), a back-fill that skips rows, a query reading another key's column.
kept_st = st.tuples(st.lists(st.sampled_from(NAMES), unique=True), st.booleans())


def store_events(tmp_path_factory, events, kept):
    keys, after = kept
    con = fresh_events(tmp_path_factory, () if after else keys)
    ingest(con, events)
    if after:
        ensure(con, keys)
    return con


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_st(unique_times=True), queries=queries_st, cuts=cuts_st(), kept=kept_st)
def test_duckdb_aggregation_equals_the_reference(tmp_path_factory, events, queries, cuts, kept):
    con = store_events(tmp_path_factory, events, kept)
    assert aggregate(con, queries, cuts).rows == aggregate_events(events, queries, cuts).rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_st(unique_times=False), queries=queries_st, cuts=cuts_st(), split=st.integers(0, 40),
       kept=st.lists(st.sampled_from(NAMES), unique=True))
def test_same_timestamps_and_ingest_order_do_not_change_the_aggregates(tmp_path_factory, events, queries, cuts, split,
                                                                      kept):
    # Many events share a timestamp: LATEST ties go to the greater transaction id whatever order
    # and batches the events arrived in; re-sent events count once. Columns given between two
    # ingests (back-filled for the first batch, filled at insert for the second) change nothing.
    once = fresh_events(tmp_path_factory)
    ingest(once, sorted(events, key=lambda e: e.transaction_id))
    split_up = fresh_events(tmp_path_factory)
    ingest(split_up, events[split:])
    ensure(split_up, kept)
    ingest(split_up, events[:split] + events[split // 2:])
    assert aggregate(split_up, queries, cuts).rows == aggregate(once, queries, cuts).rows


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


@pytest.mark.parametrize("kept", [(), ("region", "hours", "tier")])
def test_a_mix_of_metrics_over_many_events_equals_the_reference(tmp_path_factory, kept):
    events = _events(3000)
    cuts = [START + timedelta(hours=h) for h in (-1, 7, 30, 31, 70, 200)]
    con = fresh_events(tmp_path_factory, kept)
    ingest(con, events)
    assert aggregate(con, QUERIES, cuts).rows == aggregate_events(events, QUERIES, cuts).rows


@pytest.mark.parametrize("reverse", [False, True])
def test_latest_ties_go_to_the_greater_transaction_id(tmp_path_factory, reverse):
    when = START + timedelta(hours=5)
    events = [UsageEvent(tx, "acme", "seats", when, {"n": n}) for tx, n in
              [("tx-b", 7), ("tx-c", 3), ("tx-a", 9), ("TX-z", 1)]]
    events.append(UsageEvent("tx-0", "acme", "seats", when - timedelta(seconds=1), {"n": 100}))
    q = MetricQuery("seats", "LATEST", "n", None, None, (), ())
    cuts = [START, START + timedelta(days=1)]
    con = fresh_events(tmp_path_factory)
    for e in events[::-1] if reverse else events:
        ingest(con, [e])
    assert aggregate(con, [q], cuts).rows == {"seats": {"acme": {(0, ()): (to_micros(when), Decimal(3))}}}


@pytest.mark.parametrize("kept", [(), ("n", "tag")])
def test_transaction_ids_and_values_with_separators_quotes_and_escapes(tmp_path_factory, kept):
    when = START + timedelta(hours=1)
    odd = ['tx "quoted"', "tx \\ back", "tx \x1f\x1e unit", "tx €", "tx\nline"]
    events = [UsageEvent(tx, "acme", "seats", when, {"n": Decimal(i) / 4 if i else 5, "tag": tx})
              for i, tx in enumerate(odd)]
    queries = [MetricQuery("last", "LATEST", "n", None, None, (), ()),
               MetricQuery("total", "SUM", "n", None, None, (), ("tag",)),
               MetricQuery("tags", "UNIQUE", "tag", None, None, (), ())]
    cuts = [START, START + timedelta(days=1)]
    con = fresh_events(tmp_path_factory, kept)
    for e in events:
        ingest(con, [e])
    got = aggregate(con, queries, cuts).rows
    assert got["last"] == {"acme": {(0, ()): (to_micros(when), Decimal("0.75"))}}  # "tx €" is the greatest id
    reference = aggregate_events(events, queries, cuts).rows  # which breaks LATEST ties by input order
    assert (got["total"], got["tags"]) == (reference["total"], reference["tags"])


@pytest.mark.parametrize("kept", [(), ("v",)])
def test_sums_are_exact_decimals(tmp_path_factory, kept):
    # Every value at the edge of billing_reconciler.bounds (15 significant digits, 9 places):
    # 999999999999999 + 987654321098.21 + 3 - 0.5 + 10 x 0.1 + 0.123456789 + 0.000000001
    # = 1000987654321100.83345679: 24 digits, past floats (ten times 0.1 alone is
    # 0.9999999999999999 there).
    values = [Decimal("0.123456789"), Decimal("1e-9"), Decimal("987654321098.21"), 3, Decimal("-0.5"),
              *[Decimal("0.1")] * 10, 999999999999999]
    events = [UsageEvent(f"t{i}", "acme", "x", START + timedelta(minutes=i), {"v": v}) for i, v in enumerate(values)]
    q = MetricQuery("v", "SUM", "v", None, None, (), ())
    con = fresh_events(tmp_path_factory, kept)
    ingest(con, events[:2])
    ingest(con, events[2:])
    got = aggregate(con, [q], [START, START + timedelta(days=1)]).rows
    assert got == {"v": {"acme": {(0, ()): Decimal("1000987654321100.83345679")}}}
    with localcontext(prec=50):
        assert got == aggregate_events(events, [q], [START, START + timedelta(days=1)]).rows


def test_stored_usage_under_an_unknown_alias_is_billed_once_a_customer_takes_the_alias(tmp_path_factory):
    import copy

    from billing_reconciler.events.billing import rate_store

    from .test_oracles import tiered_state

    con = fresh_events(tmp_path_factory)
    ingest(con, [UsageEvent(f"a{i}", "tiny-new-alias", "api_call", datetime(2025, 1, 5, i, tzinfo=timezone.utc),
                            {"region": "US"}) for i in range(10)])
    before = tiered_state()
    after = copy.deepcopy(before)
    after.customers["tiny"]["ingest_aliases"] = ["tiny-new-alias"]
    until = datetime(2025, 2, 1, tzinfo=timezone.utc)
    old, new = rate_store(con, [before, after], until)  # one aggregation serves both
    assert old.unattributed == ["tiny-new-alias"] and old.invoices[0].total == 0
    assert new.unattributed == [] and new.invoices[0].total == Decimal(5)  # 10 calls x 0.5 cents


def test_a_nan_value_is_refused_with_its_line_and_the_rest_is_kept(tmp_path_factory):
    from billing_reconciler.events.parse import parse_text

    events, errors = parse_text('{"transaction_id": "t1", "customer_id": "acme", "event_type": "x", '
                                '"timestamp": "2024-11-01T10:00:00Z", "properties": {"v": NaN, "w": 2}}\n'
                                '{"transaction_id": "t2", "customer_id": "acme", "event_type": "x", '
                                '"timestamp": "2024-11-01T10:00:00Z", "properties": {"w": 3}}')
    assert [(e.line, e.message) for e in errors] == [(1, "properties.v: NaN is not a finite number")]
    con = fresh_events(tmp_path_factory)
    assert ingest(con, events).inserted == 1
    q = MetricQuery("w", "SUM", "w", None, None, (), ())
    assert aggregate(con, [q], [START, START + timedelta(days=1)]).rows == {"w": {"acme": {(0, ()): 3}}}
