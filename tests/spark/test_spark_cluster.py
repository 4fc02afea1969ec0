"""`--engine spark` beyond local mode, as real CLI subprocesses: a standalone cluster (a master and a
worker started from pyspark's own scripts) and a Spark Connect server give the same JSON as DuckDB
for `invoices` and `plan --usage`; the events reach them as Parquet (a staging directory for a file
read in place, the Parquet events directory in place). One cluster and one Connect server serve the
module; both are stopped after it, and no JVM a test started is left running."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import EXPORT_DISCOUNT, WIDGETS_EVENTS, run_cli

from .daemons import closed_port, connect_server, java_env, marked, new_mark, standalone_cluster
from .test_spark_cli import ARGS, EVENTS

# The plan-usage figures of tests/e2e/test_plan_usage.py (the example account, its two usage events,
# the 0.5 data-export override): November is the $10,000 commit invoice + the $1,000 platform fee +
# 10 GB × 9 cents of export, which the override halves (data export is not a cloud product: the commit
# does not pay it): before 1,000,000 + 100,000 + 90 = 1,100,090 cents, after 1,000,000 + 100,000 + 45
# = 1,100,045. The one API call (1 cent, a cloud product) is drawn from the $10,000 prepaid commit in
# both: subtotal = total + 1, drawdown -1, the commit's balance 1,000,000 - 1 = 999,999.
WIDGETS_IMPACT = [{"customer": "widgetsexpress", "before": 1100090, "after": 1100045, "delta": -45,
                   "subtotal": {"before": 1100091, "after": 1100046}, "drawdown": {"before": -1, "after": -1},
                   "balances": [{"balance": "widgetsexpress-2024/prepaid-2024", "before": 999999, "after": 999999}]}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir, mark = tmp_path_factory.mktemp("spark-cluster"), new_mark()
    with standalone_cluster(workdir, mark) as url:
        yield url, workdir
    assert marked(mark) == [], "a JVM outlived the cluster (a master, worker or executor)"


@pytest.fixture(scope="module")
def connect(tmp_path_factory):
    workdir, mark = tmp_path_factory.mktemp("spark-connect"), new_mark()
    with connect_server(workdir, mark) as url:
        yield url, workdir / "connect.log"
    assert marked(mark) == [], "a JVM outlived the Spark Connect server"


def _november(stdout: str) -> tuple[str, str]:
    november = json.loads(stdout)["invoices"][1]
    # As in test_spark_cli: 1 API call × 0.5 → 1 (rounded to the cent); 1200.5 h = 1000 × 10 + 200.5 × 8
    # = 11604 (the prepaid commit pays 1 + 11604 = 11605); 10 GB × 9 = 90. 1 + 11604 + 90 = 11695; total 90.
    return november["subtotal"], november["total"]


def test_invoices_on_a_standalone_cluster_print_what_duckdb_prints(cluster, example_tree):
    url, workdir = cluster
    (example_tree / "events.jsonl").write_text(EVENTS)
    staging = example_tree / "staging"
    staging.mkdir()
    duckdb = run_cli(*ARGS, cwd=example_tree, check=True)
    # Without a staging directory the cluster cannot read an events file of this machine: one line.
    refused = run_cli("--engine", "spark", "--spark-url", url, *ARGS, cwd=example_tree, env=java_env(new_mark()))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "BILLING_RECONCILER_SPARK_STAGING" in refused.stderr

    mark = new_mark()
    spark = run_cli("--engine", "spark", "--spark-url", url, *ARGS, cwd=example_tree, check=True,
                    env=java_env(mark, BILLING_RECONCILER_SPARK_STAGING=str(staging)))
    assert spark.stdout == duckdb.stdout
    assert _november(spark.stdout) == ("11695", "90")
    # It ran on the cluster: the master took the application, the worker launched its executor
    # (which read the Parquet export); the export is gone afterwards.
    assert "Registering app billing-reconciler" in (workdir / "master.log").read_text()
    assert "Asked to launch executor" in (workdir / "worker.log").read_text()
    assert list(staging.iterdir()) == []
    assert marked(mark) == []  # the driver JVM ended with the command


def test_invoices_over_spark_connect_read_the_parquet_events_directory(connect, example_tree):
    url, log = connect
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/state.db",
           "BILLING_RECONCILER_EVENTS_DB": f"{example_tree}/events/"}
    (example_tree / "events.jsonl").write_text(EVENTS)
    run_cli("init", cwd=example_tree, env=env, check=True)
    run_cli("ingest", "events.jsonl", cwd=example_tree, env=env, check=True)
    stored = ("invoices", "--from-manifests", "--end", "2024-12-01", "--format", "json")
    duckdb = run_cli(*stored, cwd=example_tree, env=env, check=True)
    # No staging directory: the Connect server reads the Parquet events directory in place.
    spark = run_cli("--engine", "spark", "--spark-url", url, *stored, cwd=example_tree, check=True, env=env)
    assert spark.stdout == duckdb.stdout
    assert _november(spark.stdout) == ("11695", "90")
    assert f"{example_tree}/events/" in log.read_text()  # the server read the directory


def test_plan_usage_over_spark_connect_equals_duckdb(connect, example_tree):
    url, log = connect
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/s/state.db"}
    run_cli("init", cwd=example_tree, env=env, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, env=env, check=True)
    (example_tree / "usage.jsonl").write_text(WIDGETS_EVENTS)
    contract = example_tree / "manifests" / "customers" / "widgetsexpress.yaml"
    contract.write_text(contract.read_text().replace("  commits:\n", EXPORT_DISCOUNT, 1))
    plan = ("plan", "--usage", "usage.jsonl", "--format", "json")
    duckdb = run_cli(*plan, cwd=example_tree, env=env, check=True)
    # The what-if takes the Spark path: a usage file read in place needs a staging directory there.
    refused = run_cli("--engine", "spark", "--spark-url", url, *plan, cwd=example_tree, env=env)
    assert refused.returncode == 1 and "BILLING_RECONCILER_SPARK_STAGING" in refused.stderr
    staging = example_tree / "staging"
    staging.mkdir()
    spark = run_cli("--engine", "spark", "--spark-url", url, *plan, cwd=example_tree, check=True,
                    env={**env, "BILLING_RECONCILER_SPARK_STAGING": str(staging)})
    assert json.loads(spark.stdout)["invoice_impact"] == json.loads(duckdb.stdout)["invoice_impact"]
    assert json.loads(spark.stdout)["invoice_impact"]["customers"] == WIDGETS_IMPACT
    assert f"{staging}/billing-reconciler-spark-" in log.read_text()  # the server read the export
    assert list(staging.iterdir()) == []  # and it is gone


@pytest.mark.parametrize("scheme", ["spark", "sc"])
def test_an_unreachable_cluster_is_one_line_within_seconds(scheme, example_tree):
    (example_tree / "events.jsonl").write_text(EVENTS)
    url = f"{scheme}://127.0.0.1:{closed_port()}"
    mark = new_mark()
    began = time.monotonic()
    result = run_cli("--engine", "spark", "--spark-url", url, *ARGS, cwd=example_tree,
                     env=java_env(mark, BILLING_RECONCILER_SPARK_STAGING=str(example_tree)))
    took = time.monotonic() - began
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()  # one line: no traceback, no JVM chatter
    assert line.startswith("Error: cannot reach the Spark") and url in line and "Connection refused" in line
    assert took < 60 and marked(mark) == []


@pytest.mark.parametrize("url", ["spark:/x", "http://127.0.0.1:7077", "spark://host-without-port",
                                 "sc://h:1/;token=s3cret x"])
def test_a_malformed_spark_url_is_one_line_before_anything_starts(url, tmp_path):
    # Not even a store: the URL is checked first.
    mark = new_mark()
    result = run_cli("--engine", "spark", "--spark-url", url, "invoices", cwd=tmp_path, env=java_env(mark))
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: --spark-url ") and "is not a Spark URL" in line and "sc://host:15002" in line
    assert "s3cret" not in line  # a Spark Connect token is a secret
    assert marked(mark) == [] and not (tmp_path / ".billing-reconciler").exists()
