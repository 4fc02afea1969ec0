"""Rating benchmark: ingest into DuckDB beside DuckDB's own bare read, and `invoices` for all customers.

A synthetic month (November 2024) of usage across N customers, each on a WidgetsExpress-like
contract (cloud-2024 rate card: a flat API-call rate, a tiered compute rate, a flat export rate;
a prepaid commit on cloud products, a 0.95 cloud override, a US+EU usage filter, a monthly
statement and a platform charge), written as JSON Lines.

Every phase is a child process (its wall time from spawn to exit, and its own peak memory, VmHWM):
1. anchor: DuckDB's bare `read_json` (auto-detected) with a transaction_id dedupe
   (`DISTINCT ON`), into a fresh DuckDB file: what the issue measures us against;
2. ours: `ingest_file` into a fresh events file (a fresh SQLite store beside it), the path the
   `ingest` command takes; events/s over the whole process;
3. `invoices` for every customer: events/s = events in the file / seconds of `rate_store` (usage
   request, aggregation in DuckDB, rating); also the whole process.
4. with --spark: the same `rate_store` with `engine="spark"` (Spark local mode, `local[*]`, or
   --spark-url): the session start, then the events written to Parquet + Spark SQL aggregation +
   rating; its invoices' total must equal DuckDB's. Peak memory: this process and Spark's JVM.

    python bench/bench_rating.py [--events 10000000] [--customers 1000] [--memory 2GB]
    python bench/bench_rating.py --keep DIR ...     # keep the files; --reuse DIR rates them again
    python bench/bench_rating.py --spark ...        # also rate on Spark (needs the [spark] extra, Java 17)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

MONTH = datetime(2024, 11, 1, tzinfo=timezone.utc)
UNTIL = datetime(2024, 12, 1, tzinfo=timezone.utc)
TARGET = 10_000_000  # events/s for invoices (DESIGN.md §8)


def state_specs(customers: int) -> dict:
    from billing_reconciler.manifests import load_or_raise

    catalog = {}
    for m in load_or_raise(ROOT / "manifests" / "catalog").manifests:
        catalog.setdefault(m.kind, {})[m.name] = m.spec
    catalog["Customer"], catalog["Contract"] = {}, {}
    for i in range(customers):
        key = f"cust-{i:05d}"
        catalog["Customer"][key] = {"name": f"Customer {i}", "ingest_aliases": [f"alias-{i:05d}"]}
        catalog["Contract"][f"{key}-2024"] = {
            "customer": key, "rate_card": "cloud-2024", "starting_at": "2024-11-01T00:00:00Z",
            "usage_statement_schedule": {"frequency": "MONTHLY", "day": "FIRST_OF_MONTH"},
            "scheduled_charges_on_usage_invoices": "ALL",
            "usage_filter": {"group_key": "region", "group_values": ["US", "EU"], "starting_at": "2024-11-01T00:00:00Z"},
            "commits": [{"key": "prepaid", "type": "PREPAID", "product": "prepaid-commit",
                         "applicable_product_tags": ["cloud"],
                         "access_schedule": {"schedule_items": [{"amount": 500000, "starting_at": "2024-11-01T00:00:00Z",
                                                                 "ending_before": "2025-11-01T00:00:00Z"}]},
                         "invoice_schedule": {"schedule_items": [{"amount": 500000, "timestamp": "2024-11-01T00:00:00Z"}]}}],
            "overrides": [{"key": "cloud-discount", "starting_at": "2024-11-01T00:00:00Z", "type": "MULTIPLIER",
                           "multiplier": 0.95, "applicable_product_tags": ["cloud"]}],
            "scheduled_charges": [{"key": "platform", "product": "platform-fee", "schedule": {"recurring_schedule": {
                "starting_at": "2024-12-01T00:00:00Z", "ending_before": "2025-12-01T00:00:00Z", "frequency": "MONTHLY",
                "amount": 100000, "amount_distribution": "EACH"}}}],
        }
    return catalog


def write_events(path: Path, n: int, customers: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    regions = ["US", "US", "EU", "APAC"]
    seconds = int((UNTIL - MONTH).total_seconds())
    base = MONTH.timestamp()
    with path.open("w") as f:
        for i in range(n):
            c = rnd.randrange(customers)
            ref = f"alias-{c:05d}" if i % 2 else f"cust-{c:05d}"
            t = datetime.fromtimestamp(base + rnd.randrange(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            kind = i % 3
            region = regions[i % 4]
            if kind == 0:
                ev = ("api_call", f'{{"region":"{region}"}}')
            elif kind == 1:
                ev = ("compute", f'{{"region":"{region}","hours":{rnd.randrange(1, 400) / 4}}}')
            else:
                ev = ("data_export", f'{{"region":"{region}","gb":{rnd.randrange(1, 50)}}}')
            f.write(f'{{"transaction_id":"tx-{i}","customer_id":"{ref}","event_type":"{ev[0]}",'
                    f'"timestamp":"{t}","properties":{ev[1]}}}\n')


def anchor_phase(db: str, events_file: str, memory: str) -> None:
    import duckdb

    con = duckdb.connect(db, config={"memory_limit": memory})
    con.execute("CREATE TABLE events AS SELECT DISTINCT ON (transaction_id) * "
                "FROM read_json(?, format = 'newline_delimited')", [events_file])
    print(json.dumps({"events": con.execute("SELECT count(*) FROM events").fetchone()[0],
                      "peak_rss_mb": peak_rss_mb()}))


def ingest_phase(url: str, events_file: str, memory: str) -> None:
    from billing_reconciler.events.billing import open_events
    from billing_reconciler.events.ingest import ingest_file
    from billing_reconciler.store import Store

    from billing_reconciler.events.columns import ensure, metric_keys

    Store(url).init()
    with open_events(url, memory_limit=memory) as con:
        # What open_events does for a store holding the catalog's metrics (this store holds none:
        # the invoices phase rates against specs): their properties get columns.
        ensure(con, metric_keys(state_specs(0)["BillableMetric"].values()))
        result = ingest_file(con, events_file, "jsonl")
    assert not result.errors, result.errors[:3]
    print(json.dumps({"events": result.inserted, "peak_rss_mb": peak_rss_mb()}))


def invoices_phase(url: str, customers: int, memory: str) -> None:
    """Child process: rate every customer; print JSON figures."""
    from billing_reconciler.events.billing import open_events, rate_store
    from billing_reconciler.rating import BillingState

    state = BillingState.from_specs(state_specs(customers))
    with open_events(url, read_only=True, memory_limit=memory) as con:
        counting = time.perf_counter()
        (events,) = con.execute("SELECT count(*) FROM usage_events").fetchone()
        t0 = time.perf_counter()
        (result,) = rate_store(con, state, UNTIL)
        elapsed = time.perf_counter() - t0
    total = sum(inv.total for inv in result.invoices)
    print(json.dumps({"events": events, "seconds": elapsed, "counting_seconds": t0 - counting,
                      "invoices": len(result.invoices), "total_cents": str(total),
                      "peak_rss_mb": peak_rss_mb()}))


def spark_phase(url: str, customers: int, memory: str, spark_url: str | None) -> None:
    """Child process: rate every customer on Spark; print JSON figures."""
    from billing_reconciler.events.billing import open_events, rate_store
    from billing_reconciler.events.spark import session
    from billing_reconciler.rating import BillingState

    state = BillingState.from_specs(state_specs(customers))
    t0 = time.perf_counter()
    session(spark_url)
    started = time.perf_counter() - t0
    with open_events(url, read_only=True, memory_limit=memory) as con:
        (events,) = con.execute("SELECT count(*) FROM usage_events").fetchone()
        t1 = time.perf_counter()
        (result,) = rate_store(con, state, UNTIL, engine="spark", spark_url=spark_url)
        elapsed = time.perf_counter() - t1
    total = sum(inv.total for inv in result.invoices)
    print(json.dumps({"events": events, "session_seconds": started, "seconds": elapsed,
                      "invoices": len(result.invoices), "total_cents": str(total),
                      "peak_rss_mb": peak_rss_mb(), "jvm_peak_rss_mb": children_peak_rss_mb()}))


def children_peak_rss_mb() -> float:
    """The peak resident memory of this process's children (Spark's JVM in local mode)."""
    peak = 0.0
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[1] != me:
                    continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, IndexError):
            continue
    return peak


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries the parent's peak across
    fork + exec into it, so a child of the (large) ingesting parent would report the parent's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(*args: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{args[:2]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--memory", default="2GB", help="DuckDB memory_limit, for the anchor and for ours")
    ap.add_argument("--phase", default="all")
    ap.add_argument("--url")
    ap.add_argument("--file")
    ap.add_argument("--db")
    ap.add_argument("--keep", help="directory to keep the store, the events file and the DuckDB files in")
    ap.add_argument("--reuse", help="a directory --keep filled: rate its events again, skip the ingest phases")
    ap.add_argument("--spark", action="store_true", help="also rate the same events on Spark")
    ap.add_argument("--spark-url", help="Spark master or sc:// endpoint (default local[*])")
    args = ap.parse_args()
    if args.phase == "anchor":
        return anchor_phase(args.db, args.file, args.memory)
    if args.phase == "ingest":
        return ingest_phase(args.url, args.file, args.memory)
    if args.phase == "invoices":
        return invoices_phase(args.url, args.customers, args.memory)
    if args.phase == "spark":
        return spark_phase(args.url, args.customers, args.memory, args.spark_url)
    work = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="bench-rating-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work}/state.db"
    if not args.reuse:
        events_file = work / "events.jsonl"
        t0 = time.perf_counter()
        write_events(events_file, args.events, args.customers)
        size = events_file.stat().st_size
        print(f"generated {args.events:,} events ({size / 1e9:.2f} GB) for {args.customers} customers "
              f"in {time.perf_counter() - t0:.1f} s")
        for leftover in ("state.db", "state.db-wal", "state.db-shm", "events.duckdb", "events.duckdb.wal",
                         "anchor.duckdb", "anchor.duckdb.wal"):
            if (work / leftover).exists():
                (work / leftover).unlink()
        anchor, anchor_s = child("--phase", "anchor", "--db", str(work / "anchor.duckdb"), "--file", str(events_file),
                                 "--memory", args.memory)
        (work / "anchor.duckdb").unlink()
        ours, ours_s = child("--phase", "ingest", "--url", url, "--file", str(events_file), "--memory", args.memory)
        a_rate, o_rate = anchor["events"] / anchor_s, ours["events"] / ours_s
        print(f"anchor: DuckDB bare read_json + DISTINCT ON transaction_id: {anchor['events']:,} events in "
              f"{anchor_s:.1f} s = {a_rate:,.0f} events/s; peak RSS {anchor['peak_rss_mb']:.0f} MB")
        print(f"ingest (ours, whole process): {ours['events']:,} events in {ours_s:.1f} s = {o_rate:,.0f} events/s "
              f"= {o_rate / a_rate:.2f}x the anchor (target >= 0.5x: {'OK' if o_rate >= 0.5 * a_rate else 'MISSED'}); "
              f"peak RSS {ours['peak_rss_mb']:.0f} MB")
    figures, process_s = child("--phase", "invoices", "--url", url, "--customers", str(args.customers),
                               "--memory", args.memory)
    rate = figures["events"] / figures["seconds"]
    whole = process_s - figures["counting_seconds"]
    print(f"invoices: {figures['events']:,} events, {figures['invoices']} invoices (total {figures['total_cents']} "
          f"cents): rate_store {figures['seconds']:.2f} s = {rate:,.0f} events/s (target {TARGET:,}: "
          f"{'OK' if rate >= TARGET else 'MISSED'}); whole process {whole:.2f} s = "
          f"{figures['events'] / whole:,.0f} events/s; peak RSS {figures['peak_rss_mb']:.0f} MB")
    if args.spark:
        extra = ("--spark-url", args.spark_url) if args.spark_url else ()
        on_spark, spark_s = child("--phase", "spark", "--url", url, "--customers", str(args.customers),
                                  "--memory", args.memory, *extra)
        same = on_spark["total_cents"] == figures["total_cents"]
        print(f"spark ({args.spark_url or 'local[*]'}): session start {on_spark['session_seconds']:.1f} s; "
              f"rate_store (events to Parquet, Spark SQL, rating) {on_spark['seconds']:.2f} s = "
              f"{on_spark['events'] / on_spark['seconds']:,.0f} events/s; whole process {spark_s:.1f} s; "
              f"total {on_spark['total_cents']} cents ({'same as DuckDB' if same else 'DIFFERENT from DuckDB'}); "
              f"peak RSS {on_spark['peak_rss_mb']:.0f} MB + JVM {on_spark['jvm_peak_rss_mb']:.0f} MB")
        if not same:
            raise SystemExit("Spark's invoices differ from DuckDB's")


if __name__ == "__main__":
    main()
