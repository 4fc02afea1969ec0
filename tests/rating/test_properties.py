"""Properties of rating on generated usage: rating from the store (ingest, rollup, SQL) gives the
invoices rating in memory gives; invoices are whole cents and never negative; re-ingesting the same
events changes nothing.

The generators reach where bugs hide: amounts with 0 to 9 decimal places (the bound of
`billing_reconciler.bounds`), timestamps to the microsecond and bunched around period starts,
and an override that starts inside a day, so a rating window is cut mid-day.

(An earlier version asserted that each invoice's total is the sum of its line items: that is how
the total is computed, so no mistake could make it fail. It is gone.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_reconciler.events.billing import rate_store
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest
from billing_reconciler.rating import UsageEvent, rate_events

from .helpers import example_specs, state

START = datetime(2024, 11, 1, tzinfo=timezone.utc)
UNTIL = datetime(2025, 3, 1, tzinfo=timezone.utc)
SPAN_US = int((UNTIL - START).total_seconds()) * 1_000_000
MONTH_STARTS = [datetime(2024, 11, 1), datetime(2024, 12, 1), datetime(2025, 1, 1), datetime(2025, 2, 1)]
REFS = ["widgets-express-prod", "widgetsexpress", "brightlabs-prod", "copperworks-prod", "acme", "stranger"]

# Up to 10^6 with 0 to 9 places, every digit drawn (st.decimals favours short values, which hid
# a mutation that rounded stored sums to 6 places).
amount_st = st.one_of(
    st.sampled_from(range(10)).flatmap(lambda places: st.integers(0, 10**(6 + places)).map(
        lambda n: Decimal(n).scaleb(-places))),
    st.integers(0, 10**9),
)


def instant_st(cuts: list[datetime]):
    """Anywhere in the window to the microsecond, or within a few microseconds/seconds of a cut."""
    near = st.tuples(st.sampled_from(cuts), st.sampled_from([1, 1_000_000]), st.integers(-3, 3)).map(
        lambda t: t[0] + timedelta(microseconds=t[1] * t[2]))
    anywhere = st.integers(0, SPAN_US - 1).map(lambda us: START + timedelta(microseconds=us))
    return st.one_of(anywhere, near).filter(lambda t: START <= t < UNTIL)


@st.composite
def scenario_st(draw, max_events: int = 40):
    # An override on the example contract starting inside a day: a cut point the windows must honour.
    cut = START + timedelta(seconds=draw(st.integers(1, (UNTIL - START).days * 86400 - 1)))
    multiplier = draw(st.decimals(min_value=Decimal("0.01"), max_value=2, places=2))
    cuts = [m.replace(tzinfo=timezone.utc) for m in MONTH_STARTS] + [cut]
    count = draw(st.integers(0, max_events))
    events = []
    for i in range(count):
        amount = draw(amount_st)
        events.append(UsageEvent(
            f"tx-{i}", draw(st.sampled_from(REFS)),
            draw(st.sampled_from(["api_call", "compute", "data_export", "video_generation"])), draw(instant_st(cuts)),
            {"region": draw(st.sampled_from(["US", "EU", "APAC"])), "hours": amount, "gb": amount,
             "seat_id": draw(st.sampled_from(["seat1@copperworks.example", "seat2@copperworks.example", "a", "b"])),
             "video_duration_seconds": amount}))
    return cut, multiplier, events


def _state(cut: datetime, multiplier: Decimal):
    contract = example_specs()["Contract"]["widgetsexpress-2024"]
    contract["overrides"] = [{"key": "mid-day", "starting_at": cut.strftime("%Y-%m-%dT%H:%M:%SZ"), "entitled": True,
                              "type": "MULTIPLIER", "multiplier": multiplier, "applicable_product_tags": ["cloud"]}]
    return state({"widgetsexpress-2024": contract})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenario_st())
def test_rating_from_the_store_equals_rating_in_memory(tmp_path_factory, scenario):
    # Catches: a window or day cut off by one microsecond in the engine's SQL, a decimal place
    # lost in storage or in a sum, an alias resolved on one path only.
    cut, multiplier, events = scenario
    billing = _state(cut, multiplier)
    engine = connect(tmp_path_factory.mktemp("events") / "events.duckdb")
    assert ingest(engine, events).inserted == len(events)
    (from_store,) = rate_store(engine, billing, UNTIL)
    in_memory = rate_events(billing, events, UNTIL)
    assert [i.to_json() for i in from_store.invoices] == [i.to_json() for i in in_memory.invoices]


@settings(max_examples=40, deadline=None)
@given(scenario=scenario_st())
def test_invoices_are_whole_cents_never_negative_and_paid_within_their_amount(scenario):
    # Catches: rounding left out of a line item, commits paying (or counting toward) more than a line, a credit
    # applied twice (a negative total).
    cut, multiplier, events = scenario
    for inv in rate_events(_state(cut, multiplier), events, UNTIL).invoices:
        assert inv.total >= 0 and inv.total == inv.total.to_integral_value()
        for li in inv.line_items:
            assert li.total == li.total.to_integral_value()
            if li.kind != "drawdown":
                assert sum((*li.paid_by.values(), *li.counts_toward.values()), Decimal(0)) <= li.total


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenario_st(max_events=30), data=st.data())
def test_reingesting_the_same_events_changes_nothing(tmp_path_factory, scenario, data):
    cut, multiplier, events = scenario
    if not events:
        return
    billing = _state(cut, multiplier)
    engine = connect(tmp_path_factory.mktemp("events") / "events.duckdb")
    first = ingest(engine, events)
    assert first.inserted == len(events)
    (before,) = rate_store(engine, billing, UNTIL)
    replay = data.draw(st.lists(st.sampled_from(events), min_size=1))
    again = ingest(engine, replay)
    assert again.inserted == 0
    (after,) = rate_store(engine, billing, UNTIL)
    assert [i.to_json() for i in after.invoices] == [i.to_json() for i in before.invoices]
    assert [i.to_json() for i in before.invoices] == [i.to_json() for i in rate_events(billing, events, UNTIL).invoices]
