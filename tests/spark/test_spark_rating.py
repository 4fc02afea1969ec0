"""`--engine spark`: the same aggregation queries run by Spark (local mode) give the same usage
table as DuckDB and the pure-Python reference, and the same invoices for the rating oracles'
accounts: COUNT/SUM/MAX/UNIQUE/LATEST, event-type and property filters, group keys, pricing
groups, a usage-filter history, statement periods, commits and overrides.

One Spark session serves the module (`spark` fixture); one aggregation pass rates every account
(one Spark query per metric), to keep this under a minute on two cores."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from billing_reconciler.events.aggregate import aggregate
from billing_reconciler.events.billing import rate_store
from billing_reconciler.events.engine import connect
from billing_reconciler.events.ingest import ingest
from billing_reconciler.events.spark import aggregate_on_spark
from billing_reconciler.rating import MetricQuery, UsageEvent, aggregate_events
from billing_reconciler.rating.metrics import PropertyFilter
from billing_reconciler.rating.timegrid import ts
from tests.rating.helpers import D, ev, example_specs, summary
from tests.rating.test_duckdb_aggregation import QUERIES, START, _events
from tests.rating.test_oracles import TINY_EVENTS, WIDGETSEXPRESS_Q1_EVENTS


def test_spark_aggregation_equals_duckdb_and_the_reference(spark, tmp_path):
    # The mixed metrics of the DuckDB aggregation tests (numeric and text group values, LATEST ties,
    # filters) plus property values that Spark SQL literals must escape (' and \) and a property
    # name with a dot and a quote in it.
    events = _events(3000)
    odd = [UsageEvent(f"odd-{i}", "acme", "compute", START + timedelta(hours=i), props) for i, props in enumerate([
        {"who": "it's", "n": 5, "we.ird'": 1}, {"who": "a\\b", "n": 7, "we.ird'": 2}, {"who": "plain", "n": 11},
        {"who": 'say "hi"', "n": 13, "we.ird'": Decimal("0.000000001")}])]
    events += odd
    queries = QUERIES + (
        MetricQuery("quoted", "SUM", "n", None, None, (PropertyFilter("who", in_values=frozenset({"it's", "a\\b"})),), ()),
        MetricQuery("not-quoted", "SUM", "n", None, None,
                    (PropertyFilter("who", not_in_values=frozenset({"it's", 'say "hi"'})),), ("who",)),
        MetricQuery("weird", "SUM", "we.ird'", frozenset({"compute"}), None, (), ()),
    )
    cuts = [START + timedelta(hours=h) for h in (-1, 7, 30, 31, 70, 200)]
    con = connect(tmp_path / "events.duckdb")
    ingest(con, events)
    on_spark = aggregate_on_spark(con, queries, cuts).rows
    reference = aggregate_events(events, queries, cuts).rows
    assert on_spark == reference
    assert on_spark == aggregate(con, queries, cuts).rows
    # By hand: "quoted" = 5 (it's, hour 0) + 7 (a\b, hour 1), both in window 0 [-1 h, 7 h); no
    # other event has `who`.
    assert on_spark["quoted"]["acme"] == {(0, ()): D(12)}
    # "weird" sums 1 + 2 + 0.000000001 = 3.000000001, exactly (acme's other compute events in
    # window 0 lack the property: they add 0).
    assert on_spark["weird"]["acme"][(0, ())] == D("3.000000001")


def _accounts():
    """The oracles' accounts in one state (test_oracles: widgetsexpress Q1 with its override and
    usage-filter history, the $75 package, the tiny tiered account) plus `mixco`, whose metrics
    are MAX, UNIQUE and a SUM priced by pricing group."""
    specs = example_specs()
    specs["BillableMetric"].update({
        "gpu-peak": {"name": "GPU peak", "aggregation_type": "MAX", "aggregation_key": "gpus",
                     "event_type_filter": {"in_values": ["gpu"]}},
        "active-users": {"name": "Active users", "aggregation_type": "UNIQUE", "aggregation_key": "user",
                         "event_type_filter": {"in_values": ["login"]},
                         "property_filters": [{"name": "user", "exists": True}]},
        "tokens": {"name": "Tokens", "aggregation_type": "SUM", "aggregation_key": "tokens",
                   "event_type_filter": {"in_values": ["inference"]}, "group_keys": [["model"]]},
    })
    specs["Product"].update({
        "gpu-peak": {"name": "GPU peak", "type": "USAGE", "billable_metric": "gpu-peak"},
        "active-users": {"name": "Active users", "type": "USAGE", "billable_metric": "active-users"},
        "tokens": {"name": "Tokens", "type": "USAGE", "billable_metric": "tokens", "pricing_group_key": ["model"]},
    })
    specs["RateCard"]["mix-2025"] = {"name": "Mix", "rates": [
        {"product": "gpu-peak", "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
         "price": 1000},
        {"product": "active-users", "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
         "price": 200},
        {"product": "tokens", "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
         "price": 3, "pricing_group_values": {"model": "large"}},
        {"product": "tokens", "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
         "price": 1, "pricing_group_values": {"model": "small"}},
    ]}
    widgets = specs["Contract"]["widgetsexpress-2024"]
    widgets["overrides"] = [{"key": "cloud-discount", "starting_at": "2024-11-01T00:00:00Z", "entitled": True,
                             "type": "MULTIPLIER", "multiplier": Decimal("0.95"), "applicable_product_tags": ["cloud"]}]
    specs["Customer"].update({"bestco": {"name": "Best Co", "ingest_aliases": ["best-prod"]}, "tiny": {"name": "Tiny"},
                              "mixco": {"name": "Mix Co", "ingest_aliases": ["mix-prod"]}})
    specs["Contract"].update({
        "best-2025": {
            "customer": "bestco", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z",
            "scheduled_charges_on_usage_invoices": "ALL",
            "recurring_commits": [{
                "key": "best-package", "name": "Best package", "product": "prepaid-commit", "priority": 1,
                "starting_at": "2025-01-01T00:00:00Z", "access_amount": {"unit_price": 10000},
                "invoice_amount": {"unit_price": 7500, "quantity": 1}, "commit_duration": {"value": 1}}]},
        "tiny-2025": {"customer": "tiny", "rate_card": "cloud-2024", "starting_at": "2025-01-01T00:00:00Z"},
        "mix-2025": {"customer": "mixco", "rate_card": "mix-2025", "starting_at": "2025-01-01T00:00:00Z"},
    })
    history = {"widgetsexpress-2024": [
        {"group_key": "region", "group_values": ["US"], "starting_at": "2024-11-01T00:00:00Z"},
        {"group_key": "region", "group_values": ["US", "EU"], "starting_at": "2025-01-01T00:00:00Z"},
    ]}
    from billing_reconciler.rating import BillingState

    return BillingState.from_specs(specs, history)


EVENTS = [
    *WIDGETSEXPRESS_Q1_EVENTS,  # US only until 2025, then US + EU
    # bestco (test_seed_000...): 1375 hours in January.
    ev("best-prod", "compute", "2025-01-10T00:00:00Z", hours=1375),
    *TINY_EVENTS,  # test_tiered_rate_across_the_tier_boundary
    # mixco, January: GPU peak 3 then 8 then 5; users ann, bob, ann, and a login without a user;
    # tokens 100 + 50 large, 400 small, 7 with no model.
    ev("mix-prod", "gpu", "2025-01-02T00:00:00Z", gpus=3),
    ev("mixco", "gpu", "2025-01-12T00:00:00Z", gpus=8),
    ev("mix-prod", "gpu", "2025-01-22T00:00:00Z", gpus=Decimal("5.5")),
    ev("mix-prod", "login", "2025-01-02T00:00:00Z", user="ann"),
    ev("mix-prod", "login", "2025-01-03T00:00:00Z", user="bob"),
    ev("mix-prod", "login", "2025-01-04T00:00:00Z", user="ann"),
    ev("mix-prod", "login", "2025-01-05T00:00:00Z"),
    ev("mix-prod", "inference", "2025-01-06T00:00:00Z", model="large", tokens=100),
    ev("mix-prod", "inference", "2025-01-07T00:00:00Z", model="large", tokens=50),
    ev("mix-prod", "inference", "2025-01-08T00:00:00Z", model="small", tokens=400),
    ev("mix-prod", "inference", "2025-01-09T00:00:00Z", tokens=7),
    # February: one login by cat.
    ev("mix-prod", "login", "2025-02-10T00:00:00Z", user="cat"),
]


def test_spark_invoices_equal_duckdbs_for_the_oracle_accounts(spark, tmp_path):
    state = _accounts()
    con = connect(tmp_path / "events.duckdb")
    ingest(con, EVENTS)
    until = ts("2025-03-01T00:00:00Z")
    (on_duckdb,) = rate_store(con, state, until)
    (on_spark,) = rate_store(con, state, until, engine="spark")
    assert [i.to_json() for i in on_spark.invoices] == [i.to_json() for i in on_duckdb.invoices]
    assert on_spark.unattributed == on_duckdb.unattributed
    by_contract = {}
    for inv in on_spark.invoices:
        by_contract.setdefault(inv.contract, []).append(inv)
    # The oracles' figures (their arithmetic is in tests/rating/test_oracles.py); widgetsexpress
    # up to Feb 1 there, so its February invoice is left out here.
    assert summary(by_contract["widgetsexpress-2024"])[:4] == [
        ("widgetsexpress-2024", "SCHEDULED", "2024-11-01", D(1100000), D(1100000)),
        ("widgetsexpress-2024", "USAGE", "2024-11-01", D(11110), D(90)),
        ("widgetsexpress-2024", "USAGE", "2024-12-01", D(4750), D(0)),
        ("widgetsexpress-2024", "USAGE", "2025-01-01", D(102850), D(100000)),
    ]
    assert summary(by_contract["best-2025"]) == [
        ("best-2025", "SCHEDULED", "2025-01-01", D(7500), D(7500)),
        ("best-2025", "USAGE", "2025-01-01", D(20500), D(10500)),
        ("best-2025", "USAGE", "2025-02-01", D(7500), D(7500)),
    ]
    assert summary(by_contract["tiny-2025"]) == [("tiny-2025", "USAGE", "2025-01-01", D(12400), D(12400)),
                                                 ("tiny-2025", "USAGE", "2025-02-01", D(500), D(500))]
    # mixco, January: GPU peak max(3, 8, 5.5) = 8 × 1000 = 8000; 2 unique users (ann, bob) × 200 =
    # 400; tokens (100 + 50) large × 3 = 450 + 400 small × 1 = 400 (7 tokens with no model match
    # no priced group); subtotal 8000 + 400 + 450 + 400 = 9250.
    # February: no GPU events (peak 0), 1 user (cat) × 200 = 200.
    assert summary(by_contract["mix-2025"]) == [("mix-2025", "USAGE", "2025-01-01", D(9250), D(9250)),
                                                ("mix-2025", "USAGE", "2025-02-01", D(200), D(200))]


def test_spark_reads_a_parquet_events_directory_in_place(spark, tmp_path, monkeypatch):
    from billing_reconciler.events import spark as spark_module
    from billing_reconciler.events.engine import close

    directory = tmp_path / "events"
    directory.mkdir()
    con = connect(directory)
    ingest(con, EVENTS[:9])  # widgetsexpress's events
    ingest(con, EVENTS[9:])  # the others, a second Parquet file
    close(con)

    def no_export(*_args, **_kw):
        raise AssertionError("the Parquet directory was copied, not read in place")

    monkeypatch.setattr(spark_module, "export_parquet", no_export)
    con = connect(directory, read_only=True)
    state = _accounts()
    until = ts("2025-03-01T00:00:00Z")
    (on_spark,) = rate_store(con, state, until, engine="spark")
    (on_duckdb,) = rate_store(con, state, until)
    assert [i.to_json() for i in on_spark.invoices] == [i.to_json() for i in on_duckdb.invoices]
    assert len(on_spark.invoices) > 10
    close(con)


def test_a_cluster_master_cannot_read_this_machines_events_file(tmp_path, monkeypatch):
    import socket

    from billing_reconciler.events.spark import SparkUnavailable

    monkeypatch.delenv("BILLING_RECONCILER_SPARK_STAGING", raising=False)
    con = connect(tmp_path / "events.duckdb")
    with socket.create_server(("127.0.0.1", 0)) as listening:  # a "master" that answers the probe
        url = f"spark://127.0.0.1:{listening.getsockname()[1]}"
        with pytest.raises(SparkUnavailable, match="Parquet events directory.*BILLING_RECONCILER_SPARK_STAGING"):
            aggregate_on_spark(con, QUERIES, [START, START + timedelta(days=1)], url)
        monkeypatch.setenv("BILLING_RECONCILER_SPARK_STAGING", str(tmp_path / "missing"))
        with pytest.raises(SparkUnavailable, match="missing is not a directory"):
            aggregate_on_spark(con, QUERIES, [START, START + timedelta(days=1)], url)



def test_plan_usage_impact_on_spark_local_equals_duckdb(spark, example_tree):
    # `plan --usage --engine spark` in local mode (the shared session): the what-if of the export
    # discount rated over the same file on both engines, one aggregation pass each. The figures are
    # test_spark_cluster.WIDGETS_IMPACT's, derived there by hand (before 1,100,090, after 1,100,045 cents).
    from billing_reconciler.manifests import load_manifests
    from billing_reconciler.plan.impact import invoice_impact, read_usage
    from billing_reconciler.service import revision_states
    from tests.conftest import EXPORT_DISCOUNT, WIDGETS_EVENTS

    from .test_spark_cluster import WIDGETS_IMPACT

    base = load_manifests(example_tree / "manifests").manifests
    contract = example_tree / "manifests" / "customers" / "widgetsexpress.yaml"
    contract.write_text(contract.read_text().replace("  commits:\n", EXPORT_DISCOUNT, 1))
    before, after = revision_states(base, load_manifests(example_tree / "manifests").manifests)
    usage = example_tree / "usage.jsonl"
    usage.write_text(WIDGETS_EVENTS)
    on_duckdb = invoice_impact(before, after, usage, read_usage(usage))
    on_spark = invoice_impact(before, after, usage, read_usage(usage), engine="spark")
    assert on_spark == on_duckdb
    assert on_spark["customers"] == WIDGETS_IMPACT and on_spark["until"] == "2024-12-01T00:00:00Z"
