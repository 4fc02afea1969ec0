"""The rating aggregation on Apache Spark (`--engine spark`): the same queries as DuckDB's
(`events.queries`, emitted in Spark SQL), run over the events as Parquet.

Where Spark runs: local mode (`local[*]`, a JVM in this process's care, bound to 127.0.0.1) unless
`--spark-url` / BILLING_RECONCILER_SPARK_URL names a cluster master (`spark://host:7077`, `yarn`,
`k8s://...`) or a Spark Connect endpoint (`sc://host:15002`). What it reads: a Parquet events
directory (`--events-db DIR`) in place, which a cluster's executors must be able to reach (a shared
file system); events in a DuckDB file are written to Parquet in a temporary directory first, which
only local mode can read.

Sums stay exact: properties are cast to DECIMAL(38, 12) (as on DuckDB) and ANSI mode is on, so an
overflow is an error, never a NULL or a rounded double. pyspark is the optional extra `[spark]`
(Spark 4: VARIANT, which `events.queries` reads properties with); it needs Java 17 or later.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..rating.metrics import MetricQuery, UsageTable
from ..rating.timegrid import to_micros
from .aggregate import AggregationError, add_rows
from .buckets import Buckets
from .engine import PARQUET_GLOB, EventsError
from .queries import SPARK, VALUE, build_query

VIEW = "usage_events"
LOCAL = "local[*]"
_LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
_sessions: dict[str, object] = {}


class SparkUnavailable(EventsError):
    """pyspark is not installed, Java is missing, or the master could not be reached."""


def spark_url(url: str | None = None) -> str:
    return url or os.environ.get("BILLING_RECONCILER_SPARK_URL") or LOCAL


def is_local(url: str) -> bool:
    return url.startswith("local")


def session(url: str | None = None, *, java_options: str = "", conf: dict[str, str] | None = None):
    """The Spark session for this master (one per process and master, made on first use).
    `java_options` are added to the driver JVM's; `conf` to the session's settings."""
    url = spark_url(url)
    if url in _sessions:
        return _sessions[url]
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("--engine spark needs pyspark: pip install 'billing-reconciler[spark]' "
                               "(and pyspark[connect] for an sc:// endpoint)") from None
    if url.startswith("sc://"):
        builder = SparkSession.builder.remote(url)
    else:
        if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise SparkUnavailable("--engine spark needs Java 17 or later: install it (Debian/Ubuntu: apt-get install "
                                   "openjdk-17-jre-headless) or set JAVA_HOME")
        builder = SparkSession.builder.master(url).appName("billing-reconciler")
        java_options = f"-Dlog4j2.configurationFile={_LOG_CONFIG.as_uri()} {java_options}".strip()
        builder = (builder.config("spark.driver.extraJavaOptions", java_options)
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false"))
        if is_local(url):
            # Nothing listens beyond this machine; few shuffle partitions suit one machine's cores.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1))))
    builder = builder.config("spark.sql.session.timeZone", "UTC").config("spark.sql.ansi.enabled", "true")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - pyspark raises several kinds; all mean "could not start"
        raise SparkUnavailable(f"Spark could not start on {url}: {_first_line(exc)}") from None
    _sessions[url] = spark
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def aggregate_parquet(spark, path: str | os.PathLike[str], queries: Sequence[MetricQuery],
                      cuts: Sequence[datetime]) -> UsageTable:
    """Aggregate the events of a Parquet file or directory (the events table's columns) on Spark."""
    out = Buckets(queries)
    if len(cuts) < 2 or not queries:
        return out.table(list(cuts))
    spark.read.parquet(str(path)).createOrReplaceTempView(VIEW)
    micros = [to_micros(c) for c in cuts]
    for q in queries:
        try:
            sql = build_query(q, micros, SPARK, VIEW)
        except ValueError as exc:  # a property name Spark's paths cannot spell
            raise AggregationError(f"metric {q.metric!r}: {exc}") from None
        try:
            rows = spark.sql(sql).collect()
        except Exception as exc:  # noqa: BLE001 - narrowed by the message below
            text = str(exc)
            if "ARITHMETIC_OVERFLOW" in text or "NUMERIC_VALUE_OUT_OF_RANGE" in text:
                raise AggregationError(f"usage of metric {q.metric!r} sums past what {VALUE} holds") from None
            raise
        add_rows(out, q, rows)
    return out.table(list(cuts))


def export_parquet(con, directory: str | os.PathLike[str]) -> Path:
    """Write the DuckDB events table to one Parquet file in `directory` (the columns Spark reads)."""
    path = Path(directory) / "events.parquet"
    con.execute(f"COPY (SELECT transaction_id, customer_ref, event_type, \"timestamp\", "
                f"CAST(properties AS VARCHAR) AS properties FROM usage_events) TO '{_sql_path(path)}' (FORMAT parquet)")
    return path


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def aggregate_on_spark(con, queries: Sequence[MetricQuery], cuts: Sequence[datetime], url: str | None = None,
                       parquet: str | os.PathLike[str] | None = None) -> UsageTable:
    """Rate on Spark: the Parquet events directory `parquet` in place, else the DuckDB connection's
    events written to a temporary Parquet file (local mode only: a cluster cannot read it)."""
    url = spark_url(url)
    if parquet is not None:
        parquet = Path(parquet)
        if parquet.is_dir():
            if not any(parquet.glob(PARQUET_GLOB)):  # nothing ingested yet
                return Buckets(queries).table(list(cuts))
            parquet = parquet / PARQUET_GLOB  # not the directory's other files (its lock, its move record)
        return aggregate_parquet(session(url), parquet, queries, cuts)
    if not is_local(url):
        raise SparkUnavailable(f"the Spark master {url} cannot read this machine's events file: point --events-db at "
                               "a Parquet events directory on storage the cluster reaches (e.g. a shared mount)")
    spark = session(url)
    with tempfile.TemporaryDirectory(prefix="billing-reconciler-spark-") as tmp:
        path = export_parquet(con, tmp)
        return aggregate_parquet(spark, path, queries, cuts)
