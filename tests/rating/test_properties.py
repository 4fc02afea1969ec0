"""Properties: every invoice's total is the sum of its line items (and its subtotal the sum of its
charges); re-ingesting the same events changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_reconciler.events.billing import rate_store
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest
from billing_reconciler.rating import UsageEvent, rate_events

from .helpers import state

START = datetime(2024, 11, 1, tzinfo=timezone.utc)
UNTIL = datetime(2025, 3, 1, tzinfo=timezone.utc)
REFS = ["widgets-express-prod", "widgetsexpress", "brightlabs-prod", "copperworks-prod", "acme", "stranger"]

event_st = st.builds(
    lambda i, ref, kind, minutes, region, amount, seat: UsageEvent(
        f"tx-{i}", ref, kind, START + timedelta(minutes=minutes),
        {"region": region, "hours": amount, "gb": amount, "seat_id": seat,
         "video_duration_seconds": amount}),
    st.integers(0, 10**6), st.sampled_from(REFS),
    st.sampled_from(["api_call", "compute", "data_export", "video_generation"]),
    st.integers(0, int((UNTIL - START).total_seconds() // 60) - 1),
    st.sampled_from(["US", "EU", "APAC"]),
    st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from(["seat1@copperworks.example", "seat2@copperworks.example", "a", "b"]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(event_st, max_size=40, unique_by=lambda e: e.transaction_id))
def test_invoice_totals_equal_the_sum_of_their_line_items(events):
    result = rate_events(state(), events, UNTIL)
    for inv in result.invoices:
        assert inv.total == sum((li.total for li in inv.line_items), Decimal(0))
        assert inv.subtotal == sum((li.total for li in inv.line_items if li.kind != "drawdown"), Decimal(0))
        for li in inv.line_items:
            assert li.total == li.total.to_integral_value()  # whole cents
            if li.kind != "drawdown":
                assert sum((*li.paid_by.values(), *li.counts_toward.values()), Decimal(0)) <= li.total
        assert inv.total >= 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(event_st, min_size=1, max_size=30, unique_by=lambda e: e.transaction_id), st.data())
def test_reingesting_the_same_events_changes_nothing(tmp_path_factory, events, data):
    engine = connect(tmp_path_factory.mktemp("events") / "events.duckdb")
    first = ingest(engine, events)
    assert first.inserted == len(events)
    (before,) = rate_store(engine, state(), UNTIL)
    replay = data.draw(st.lists(st.sampled_from(events), min_size=1))
    again = ingest(engine, replay)
    assert again.inserted == 0
    (after,) = rate_store(engine, state(), UNTIL)
    assert [i.to_json() for i in after.invoices] == [i.to_json() for i in before.invoices]
    assert [i.to_json() for i in before.invoices] == [i.to_json() for i in rate_events(state(), events, UNTIL).invoices]
