"""Rating benchmark: ingest rate (SQLite, PostgreSQL) and `invoices` throughput for all customers.

A synthetic month (November 2024) of usage across N customers, each on a WidgetsExpress-like
contract (cloud-2024 rate card: a flat API-call rate, a tiered compute rate, a flat export rate;
a prepaid commit on cloud products, a 0.95 cloud override, a US+EU usage filter, a monthly
statement and a platform charge). Events are JSON Lines through the real parser and ingest path.

Phases:
1. ingest into a fresh SQLite store (events/s; parsing included, the rollup written as it goes);
2. `invoices` for every customer (usage request -> aggregation from the usage rollup, raw events
   where it cannot answer -> rating), in a child process so its peak memory (VmHWM) is its
   own; events/s = events in the store / wall seconds of `rate_store`. Also printed: the
   child's whole wall time (process start, imports, building the state of N contracts; not the
   bench's own count of events), and with --raw the same run aggregating every event in SQL
   instead of reading the rollup;
3. ingest a smaller sample into a throw-away PostgreSQL server (tests/pgserver.py), events/s, and
   `invoices` there.

    python bench/bench_rating.py [--events 10000000] [--customers 1000] [--pg-events 1000000] [--raw]
    python bench/bench_rating.py --keep DIR ...     # keep the store; --reuse DIR skips phase 1
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
TARGET = 1_000_000  # events/s for invoices


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


def ingest_file(url: str, path: Path) -> tuple[int, float]:
    from billing_reconciler.events.billing import open_engine
    from billing_reconciler.events.ingest import ingest
    from billing_reconciler.events.parse import parse_jsonl
    from billing_reconciler.store import Store

    Store(url).init()
    engine = open_engine(url)
    t0 = time.perf_counter()
    with path.open() as f:
        result = ingest(engine, parse_jsonl(f))
    elapsed = time.perf_counter() - t0
    assert not result.errors, result.errors[:3]
    return result.inserted, elapsed


def invoices_phase(url: str, customers: int, use_rollup: bool) -> None:
    """Child process: rate every customer; print JSON figures."""
    from sqlalchemy import text

    from billing_reconciler.events.aggregate import aggregate
    from billing_reconciler.events.billing import open_engine, rate_store
    from billing_reconciler.rating import BillingState, rate, usage_request

    state = BillingState.from_specs(state_specs(customers))
    engine = open_engine(url)
    counting = time.perf_counter()
    with engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM usage_events")).scalar()
        rollup_rows = conn.execute(text("SELECT count(*) FROM usage_rollup")).scalar()
    t0 = time.perf_counter()
    if use_rollup:
        (result,) = rate_store(engine, state, UNTIL)
    else:  # rate_store, aggregating every event
        request = usage_request([state], UNTIL)
        result = rate(state, aggregate(engine, request.queries, request.cuts, use_rollup=False), UNTIL)
    elapsed = time.perf_counter() - t0
    total = sum(inv.total for inv in result.invoices)
    print(json.dumps({"events": events, "rollup_rows": rollup_rows, "seconds": elapsed,
                      "counting_seconds": t0 - counting,
                      "invoices": len(result.invoices), "total_cents": str(total),
                      "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries the parent's peak across
    fork + exec into it, so a child of the (large) ingesting parent would report the parent's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_invoices(url: str, customers: int, use_rollup: bool = True) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--phase", "invoices", "--url", url,
                          "--customers", str(customers), *([] if use_rollup else ["--raw"])],
                         capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = time.perf_counter() - t0 - figures["counting_seconds"]  # the bench's own count(*)
    return figures


def report(label: str, figures: dict) -> None:
    rate = figures["events"] / figures["seconds"]
    print(f"{label}: {figures['events']:,} events ({figures['rollup_rows']:,} rollup rows), "
          f"{figures['invoices']} invoices (total {figures['total_cents']} cents) in {figures['seconds']:.2f} s "
          f"= {rate:,.0f} events/s (target {TARGET:,}: {'OK' if rate >= TARGET else 'MISSED'}); "
          f"peak RSS {figures['peak_rss_mb']:.0f} MB; whole process {figures['process_seconds']:.2f} s "
          f"= {figures['events'] / figures['process_seconds']:,.0f} events/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--pg-events", type=int, default=1_000_000)
    ap.add_argument("--phase", default="all")
    ap.add_argument("--url")
    ap.add_argument("--keep", help="directory to keep the SQLite store and events in")
    ap.add_argument("--reuse", help="a directory --keep filled: rate its store, skip generating and ingesting")
    ap.add_argument("--raw", action="store_true", help="also rate from every event (no rollup), for comparison")
    args = ap.parse_args()
    if args.phase == "invoices":
        invoices_phase(args.url, args.customers, use_rollup=not args.raw)
        return
    work = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="bench-rating-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "state.db"
    url = f"sqlite:///{db}"
    if not args.reuse:
        events_file = work / "events.jsonl"
        t0 = time.perf_counter()
        write_events(events_file, args.events, args.customers)
        print(f"generated {args.events:,} events for {args.customers} customers in {time.perf_counter() - t0:.1f} s")
        for leftover in (db, work / "state.db-wal", work / "state.db-shm"):
            if leftover.exists():
                leftover.unlink()
        n, secs = ingest_file(url, events_file)
        print(f"ingest SQLite: {n:,} events in {secs:.1f} s = {n / secs:,.0f} events/s")
    report("invoices SQLite", run_invoices(url, args.customers))
    if args.raw:
        report("invoices SQLite, every event (no rollup)", run_invoices(url, args.customers, use_rollup=False))
    if args.pg_events:
        from tests.pgserver import PostgresUnavailable, start_server

        try:
            server = start_server()
        except PostgresUnavailable as exc:
            print(f"PostgreSQL skipped: {exc}")
            return
        try:
            pg_file = work / "events-pg.jsonl"
            write_events(pg_file, args.pg_events, args.customers)
            pg_url = server.create_database("bench")
            n, secs = ingest_file(pg_url, pg_file)
            print(f"ingest PostgreSQL: {n:,} events in {secs:.1f} s = {n / secs:,.0f} events/s")
            report("invoices PostgreSQL", run_invoices(pg_url, args.customers))
            if args.raw:
                report("invoices PostgreSQL, every event (no rollup)",
                       run_invoices(pg_url, args.customers, use_rollup=False))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
