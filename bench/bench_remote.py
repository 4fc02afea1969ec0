"""Remote apply and plan through HTTP: `--backend metronome` against `emulator serve`.

    python bench/bench_remote.py                      # 2,000 customers + 2,000 contracts
    python bench/bench_remote.py --customers 200      # a quick look

Generates the synthetic account (generate_account.py), starts `billing-reconciler emulator serve`
on a free port (a subprocess, SQLite data dir), then runs the installed CLI as subprocesses:
init, `apply --auto-approve` (first apply: every object created and read back, one journal commit
per operation), a no-op `plan` with a full refresh over HTTP, and `plan --no-refresh`. Prints
wall time, requests/s as the server counted them (its access log), and peak memory (RSS) of each
CLI run. Exits 1 if a target is missed: apply <= 60 s, no-op plan --no-refresh <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [str(Path(sys.executable).with_name("billing-reconciler"))]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak RSS MB of this child, result)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode not in (0, 2):
        raise SystemExit(f"{args} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, max(peak, before) / 1024, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    subprocess.run([sys.executable, str(HERE / "generate_account.py"), "--customers", str(options.customers),
                    "--out", str(work / "manifests")], check=True, capture_output=True)
    token = secrets.token_urlsafe(24)
    log = open(work / "serve.log", "w")
    server = subprocess.Popen([*CLI, "emulator", "serve", "--port", "0", "--data", str(work / "emulator"),
                               "--access-log"], env={**os.environ, "METRONOME_BEARER_TOKEN": token},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", (work / "serve.log").read_text())
            url = found.group(1) if found else None
            time.sleep(0.1)
        if url is None:
            raise SystemExit("emulator serve did not start:\n" + (work / "serve.log").read_text())
        env = {**os.environ, "NO_COLOR": "1", "BILLING_RECONCILER_BACKEND": "metronome", "METRONOME_BASE_URL": url,
               "METRONOME_BEARER_TOKEN": token}
        run(["init"], work, env)
        figures = []
        for name, args in (("first apply", ["apply", "--auto-approve"]),
                           ("no-op plan, full refresh", ["plan", "--detailed-exitcode"]),
                           ("no-op plan --no-refresh", ["plan", "--detailed-exitcode", "--no-refresh"])):
            requests_before = _requests(work)
            seconds, peak, result = run(args, work, env)
            requests = _requests(work) - requests_before
            figures.append((name, seconds, peak, requests))
            if name != "first apply" and result.returncode != 0:
                raise SystemExit(f"{name}: the plan is not empty:\n{result.stdout[-3000:]}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    print(f"{options.customers} customers + {options.customers} contracts, backend metronome over HTTP")
    for name, seconds, peak, requests in figures:
        rate = f"{requests / seconds:,.0f} req/s" if requests else "-"
        print(f"  {name:28} {seconds:7.2f} s  {requests:7,} requests  {rate:>12}  peak RSS {peak:6.0f} MB")
    apply_s, no_refresh_s = figures[0][1], figures[2][1]
    ok = apply_s <= 60 * options.customers / 2000 and no_refresh_s <= 2.0
    print("targets (apply <= 60 s at 2,000 + 2,000; plan --no-refresh <= 2 s):", "met" if ok else "MISSED")
    return 0 if ok else 1


def _requests(work: Path) -> int:
    text = (work / "serve.log").read_text(errors="replace")
    return len(re.findall(r'"(?:GET|POST|PUT) ', text)) or text.count("\n") - 1


if __name__ == "__main__":
    sys.exit(main())
