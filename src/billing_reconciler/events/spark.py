"""The rating aggregation on Apache Spark (`--engine spark`): the same queries as DuckDB's
(`events.queries`, emitted in Spark SQL), run over the events as Parquet.

Where Spark runs: local mode (`local[*]`, a JVM in this process's care, bound to 127.0.0.1) unless
`--spark-url` / BILLING_RECONCILER_SPARK_URL names a cluster master (`spark://host:7077`, `yarn`,
`k8s://...`) or a Spark Connect endpoint (`sc://host:15002`). What it reads: a Parquet events
directory (`--events-db DIR`) in place, which a cluster's executors must be able to reach (a shared
file system); events in a DuckDB file are written to Parquet in a temporary directory first, which
only local mode can read.

Before any JVM starts, the URL is checked (`check_url`: a malformed one is one sentence) and a
`spark://` master or `sc://` server is probed over TCP (`probe`, a few seconds): Spark itself
retries an unreachable master for minutes. On a cluster a DuckDB file (the store's events, or an
`--events`/`--usage` file read in place) is written as Parquet under BILLING_RECONCILER_SPARK_STAGING,
a directory the cluster reads under the same path; without it, it is refused.

Sums stay exact: properties are cast to DECIMAL(38, 12) (as on DuckDB) and ANSI mode is on, so an
overflow is an error, never a NULL or a rounded double. pyspark is the optional extra `[spark]`
(Spark 4: VARIANT, which `events.queries` reads properties with); it needs Java 17 or later.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
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
STAGING_ENV = "BILLING_RECONCILER_SPARK_STAGING"
PROBE_SECONDS = 5.0
CONNECT_PORT = 15002  # Spark Connect's default port
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
_URL_FORMS = re.compile(
    r"local(?:\[(?:\*|[1-9]\d*)(?:,[1-9]\d*)?\])?"  # local, local[4], local[*], local[4,2] (retries)
    r"|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"
    rf"|spark://{_HOST}:\d{{1,5}}(?:,{_HOST}:\d{{1,5}})*"  # standalone; several masters with ZooKeeper
    rf"|sc://{_HOST}(?::\d{{1,5}})?(?:/(?:;[^;=/\s]+=[^;\s]*)*)?"  # Spark Connect, /;token=...;use_ssl=true
    r"|yarn|k8s://\S+")
URL_FORMS = "local[*], spark://host:7077, yarn, k8s://https://host:443 or sc://host:15002"


class SparkUnavailable(EventsError):
    """pyspark is not installed, Java is missing, or the master could not be reached."""


def spark_url(url: str | None = None) -> str:
    return url or os.environ.get("BILLING_RECONCILER_SPARK_URL") or LOCAL


def is_local(url: str) -> bool:
    return url.startswith("local")


def shown(url: str) -> str:
    """The URL for messages: a Spark Connect URL without its parameters (`/;token=...` is a
    secret), any other without a user:password@ part."""
    if url.startswith("sc://"):
        head = url.split("/;", 1)[0]
        return head[:-1] if head.endswith("/") and not head.endswith("://") else head
    return re.sub(r"//[^/@\s]*@", "//", url)


def check_url(url: str) -> str:
    """`url` if it is a master or Spark Connect URL Spark takes; else SparkUnavailable saying what is."""
    if not _URL_FORMS.fullmatch(url) or any(not 0 < port < 65536 for port in _ports(url)):
        raise SparkUnavailable(f"--spark-url {shown(url)!r} is not a Spark URL: use {URL_FORMS} "
                               "(--spark-url or BILLING_RECONCILER_SPARK_URL)")
    return url


def _ports(url: str) -> list[int]:
    return [int(p) for p in re.findall(r":(\d{1,5})(?=,|/|$)", url.split("://", 1)[-1])] if "://" in url else []


def _addresses(url: str) -> list[tuple[str, int]]:
    """(host, port) of each master of a `spark://` URL or the server of an `sc://` one (else none)."""
    if not url.startswith(("spark://", "sc://")):
        return []
    out = []
    for part in url.split("://", 1)[1].split("/", 1)[0].split(","):
        host, _, port = part.rpartition(":") if re.search(r":\d+$", part) else (part, "", str(CONNECT_PORT))
        out.append((host.strip("[]"), int(port)))
    return out


def probe(url: str, timeout: float = PROBE_SECONDS) -> None:
    """Raise SparkUnavailable unless one of the URL's masters (or its Connect server) accepts a TCP
    connection within `timeout` seconds: Spark would retry an unreachable master for minutes."""
    addresses = _addresses(url)
    reasons = []
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            reasons.append(f"{host}:{port}: {exc.strerror or type(exc).__name__}"
                           if not isinstance(exc, TimeoutError) else f"{host}:{port}: no answer in {timeout:g} s")
    if addresses:
        what = "Spark Connect server" if url.startswith("sc://") else "Spark master"
        start = "start-connect-server.sh" if url.startswith("sc://") else "start-master.sh"
        raise SparkUnavailable(f"cannot reach the {what} at {shown(url)} ({'; '.join(reasons)}): check the URL "
                               f"(--spark-url or BILLING_RECONCILER_SPARK_URL), that the {what} is running "
                               f"({start}) and that this machine can reach its port")


def session(url: str | None = None, *, java_options: str = "", conf: dict[str, str] | None = None):
    """The Spark session for this master (one per process and master, made on first use).
    `java_options` are added to the driver JVM's; `conf` to the session's settings."""
    url = check_url(spark_url(url))
    if url in _sessions:
        return _sessions[url]
    probe(url)
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
        raise SparkUnavailable(f"Spark could not start on {shown(url)}: {_first_line(exc)}") from None
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
    events written to a temporary Parquet file: in the system's temporary directory in local mode,
    under BILLING_RECONCILER_SPARK_STAGING (a directory the cluster reads) on a cluster."""
    url = check_url(spark_url(url))
    if parquet is not None:
        parquet = Path(parquet)
        if parquet.is_dir():
            if not any(parquet.glob(PARQUET_GLOB)):  # nothing ingested yet
                return Buckets(queries).table(list(cuts))
            parquet = parquet / PARQUET_GLOB  # not the directory's other files (its lock, its move record)
        return aggregate_parquet(session(url), parquet, queries, cuts)
    if not is_local(url):
        probe(url)  # an unreachable cluster is named before what it could not read
    staging = None if is_local(url) else staging_dir(url)
    spark = session(url)
    with tempfile.TemporaryDirectory(prefix="billing-reconciler-spark-", dir=staging) as tmp:
        path = export_parquet(con, tmp)
        return aggregate_parquet(spark, path, queries, cuts)


def staging_dir(url: str) -> str:
    """BILLING_RECONCILER_SPARK_STAGING: where events from this machine are written as Parquet for a
    cluster to read (the same path on the cluster: a shared mount, or this machine for a cluster on it)."""
    staging = os.environ.get(STAGING_ENV, "").strip()
    if not staging:
        raise SparkUnavailable(f"the Spark cluster at {shown(url)} cannot read this machine's events file: point "
                               f"--events-db at a Parquet events directory on storage the cluster reaches, or set "
                               f"{STAGING_ENV} to a directory the cluster reads under the same path (a shared mount) "
                               f"to have the events written there as Parquet")
    if not os.path.isdir(staging):
        raise SparkUnavailable(f"{STAGING_ENV}={staging} is not a directory: create it on storage the cluster reads")
    return staging
