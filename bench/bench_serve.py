"""Requests per second of `billing-reconciler emulator serve` over HTTP on this machine.

    python bench/bench_serve.py                      # 2,000 customers + 2,000 contracts, 10 clients
    python bench/bench_serve.py --count 500 --clients 1

Starts the installed CLI on a free port with a fresh data directory, then times, with `--clients`
concurrent keep-alive clients (httpx, one thread each):
  - customer creates (an ingest alias and a billing provider configuration each, as the
    generated account has), then contract creates (a prepaid commit and an override each);
  - reads: GET /v1/customers/{id}, POST /v2/contracts/list per customer, and the full
    customer list in pages of 100.
Prints each phase's requests/s, the server's CPU time per request (what the server costs, whatever
else runs on the machine) and its peak RSS. Target: >= 200 writes/s (the metronome
backend's benchmark applies 2,000 customers + 2,000 contracts in <= 60 s including read-backs).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

USD = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"


def start(data_dir: Path, token: str, log: Path) -> tuple[subprocess.Popen, str]:
    exe = Path(sys.executable).with_name("billing-reconciler")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "billing_reconciler.cli"]
    out = open(log, "wb")
    process = subprocess.Popen([*command, "emulator", "serve", "--port", "0", "--data", str(data_dir)],
                               stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, "METRONOME_BEARER_TOKEN": token})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"emulator serve did not start:\n{log.read_text()}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PID = 0


def timed(name: str, count: int, clients: int, base_url: str, token: str, one) -> list:
    local = threading.local()

    def call(i: int):
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        response = one(local.client, i)
        if response.status_code != 200:
            raise SystemExit(f"{name} #{i}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    started, cpu = time.perf_counter(), cpu_seconds(SERVER_PID)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(call, range(count)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(SERVER_PID) - cpu
    print(f"{name:<34} {count:>6} requests  {elapsed:7.2f} s  {count / elapsed:8.0f} req/s  "
          f"server CPU {1000 * cpu / count:5.2f} ms/request")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    token = "bench-" + secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        process, base_url = start(Path(tmp) / "data", token, Path(tmp) / "server.log")
        global SERVER_PID
        SERVER_PID = process.pid
        try:
            with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                while c.get("/v1/credit-types/list").status_code != 200:
                    time.sleep(0.05)
                product = c.post("/v1/contract-pricing/products/create",
                                 json={"name": "Platform", "type": "FIXED"}).json()["data"]["id"]
            print(f"emulator serve at {base_url}, {args.clients} concurrent clients")
            customers = timed("POST /v1/customers", args.count, args.clients, base_url, token, lambda c, i: c.post(
                "/v1/customers", json={
                    "name": f"Customer {i}", "ingest_aliases": [f"customer-{i}"],
                    "customer_billing_provider_configurations": [{
                        "billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
                        "configuration": {"stripe_customer_id": f"cus_{i}",
                                          "stripe_collection_method": "charge_automatically"}}]}))
            ids = [r["data"]["id"] for r in customers]
            contract_body = ('{"customer_id": "%s", "starting_at": "2025-01-01T00:00:00Z", "name": "Main",'
                             ' "commits": [{"type": "PREPAID", "product_id": "%s", "priority": 1,'
                             ' "access_schedule": {"credit_type_id": "%s", "schedule_items": [{"amount": 1000.10,'
                             ' "starting_at": "2025-01-01T00:00:00Z", "ending_before": "2026-01-01T00:00:00Z"}]}}],'
                             ' "overrides": [{"starting_at": "2025-01-01T00:00:00Z", "type": "MULTIPLIER",'
                             ' "multiplier": 0.9, "product_id": "%s"}]}')
            timed("POST /v1/contracts/create", args.count, args.clients, base_url, token, lambda c, i: c.post(
                "/v1/contracts/create", content=contract_body % (ids[i], product, USD, product)))
            timed("GET /v1/customers/{id}", args.count, args.clients, base_url, token,
                  lambda c, i: c.get(f"/v1/customers/{ids[i]}"))
            timed("POST /v2/contracts/list", args.count, args.clients, base_url, token,
                  lambda c, i: c.post("/v2/contracts/list", json={"customer_id": ids[i]}))
            pages = -(-args.count // 100)
            cursors: list[str | None] = [None]
            with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                started = time.perf_counter()
                while True:
                    page = c.get("/v1/customers", params={"limit": 100, **({"next_page": cursors[-1]} if cursors[-1] else {})}).json()
                    if not page["next_page"]:
                        break
                    cursors.append(page["next_page"])
                elapsed = time.perf_counter() - started
            print(f"{'GET /v1/customers (pages of 100)':<34} {pages:>6} requests  {elapsed:7.2f} s  "
                  f"{pages / elapsed:8.0f} req/s (1 client)")
            print(f"server peak RSS: {peak_rss_mb(process.pid):.0f} MB")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
