"""`invoices` with the Spark engine as a real subprocess: the same JSON as DuckDB's; without Java, a
sentence saying what to install, exit 1, no traceback."""

from __future__ import annotations

import json
import os
import shutil

from tests.conftest import WIDGETS_EVENTS, run_cli

from .conftest import spark_unavailable

EVENTS = WIDGETS_EVENTS + json.dumps(
    {"transaction_id": "t3", "customer_id": "widgets-express-prod", "event_type": "compute",
     "timestamp": "2024-11-06T10:00:00Z", "properties": {"region": "US", "hours": 1200.5}}) + "\n"
ARGS = ("invoices", "--from-manifests", "--events", "events.jsonl", "--end", "2024-12-01", "--format", "json")


def test_invoices_on_spark_print_what_duckdb_prints(example_tree):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        spark_unavailable("no Java for Spark")
    (example_tree / "events.jsonl").write_text(EVENTS)
    duckdb = run_cli(*ARGS, cwd=example_tree, check=True)
    # The engine from the environment; the JVM's quick compiler only (a short run).
    spark = run_cli(*ARGS, cwd=example_tree, check=True,
                    env={"BILLING_RECONCILER_ENGINE": "spark", "_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1"})
    assert spark.stdout == duckdb.stdout
    november = json.loads(spark.stdout)["invoices"][1]
    # November: 1 API call × 0.5 = 0.5, a line total rounded to the cent: 1; 1200.5 h = 1000 × 10
    # + 200.5 × 8 = 10000 + 1604 (cloud: the prepaid commit pays 1 + 11604 = 11605); 10 GB × 9 = 90
    # (network, overage). Subtotal 1 + 11604 + 90 = 11695; total 11695 - 11605 = 90.
    assert (november["subtotal"], november["total"]) == ("11695", "90")


def test_without_java_the_spark_engine_says_what_to_install(example_tree):
    (example_tree / "events.jsonl").write_text(EVENTS)
    # No java on PATH, no JAVA_HOME (empty: run_cli lays env over os.environ).
    result = run_cli("--engine", "spark", *ARGS, cwd=example_tree, env={"PATH": "/nonexistent", "JAVA_HOME": ""})
    assert result.returncode == 1, result.stderr
    assert "needs Java 17" in result.stderr and "openjdk-17-jre-headless" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
