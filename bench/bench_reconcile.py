"""Reconcile benchmark: init, first apply, no-op plan and one-change plan on a synthetic account.

Generates N customers + N contracts (default 10,000; each contract with a commit, an override
and a scheduled charge: bench/generate_account.py) and runs the installed console script as a
subprocess, on SQLite and on PostgreSQL (a throw-away server started with tests/pgserver.py's
start_server(), stopped at the end):

- `init`
- `validate`: fills the manifest parse cache (cold parse; shown, no target)
- `apply --auto-approve`: the first apply, 2N+7 objects created, every request validated
  against the OpenAPI document and executed by the emulator               target <= 30 s
- `plan --detailed-exitcode` with nothing to do (warm cache), must exit 0  target <= 2.0 s
- `plan --detailed-exitcode` after changing one contract's override multiplier (the changed
  file is parsed again), must exit 2 with one edit_contract              target <= 2.0 s
- peak memory of any one of those processes                             target <= 800 MB

For each run it prints wall seconds, CPU seconds (user + system, from wait4: wall time suffers
from anything else running on a two-core machine, CPU time much less) and the process's peak
RSS (wait4's ru_maxrss). Exits 1 if a target is missed or a command exits with the wrong code.

    python bench/bench_reconcile.py [--customers 10000] [--stores sqlite,postgres] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate_account import generate  # noqa: E402

TARGETS = {"apply": 30.0, "plan (no-op)": 2.0, "plan (1 change)": 2.0}  # wall seconds
MEMORY_TARGET_MB = 800


@dataclass
class Run:
    store: str
    step: str
    exit_code: int
    wall: float
    cpu: float
    peak_mb: float
    expected_exit: int = 0

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.step)

    @property
    def ok(self) -> bool:
        return (self.exit_code == self.expected_exit and (self.target is None or self.wall <= self.target)
                and self.peak_mb <= MEMORY_TARGET_MB)


def cli_command() -> list[str]:
    exe = Path(sys.executable).with_name("billing-reconciler")
    found = str(exe) if exe.exists() else shutil.which("billing-reconciler")
    if not found:
        sys.exit("billing-reconciler is not installed (pip install -e .)")
    return [found]


def run(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, float, float, float]:
    """(exit code, wall s, CPU s, peak RSS MB) of one CLI run; its output goes to `log`."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([*cli_command(), *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def change_one_contract(manifests: Path, customer: int) -> Path:
    """Set the override multiplier of customer N's contract to 0.90 (it is 0.95)."""
    path = manifests / "customers" / f"{customer // 100:04d}.yaml"
    text = path.read_text()
    start = text.index(f"name: customer-{customer:05d}-2024")
    match = re.compile(r"multiplier: 0\.95").search(text, start)
    if match is None:
        raise SystemExit(f"no override multiplier found for customer {customer} in {path}")
    path.write_text(text[:match.start()] + "multiplier: 0.90" + text[match.end():])
    return path


def bench_store(name: str, url: str, account: Path, workdir: Path, runs: int, customers: int) -> list[Run]:
    workdir.mkdir(parents=True)
    shutil.copytree(account, workdir / "manifests")
    env = {**os.environ, "NO_COLOR": "1", "BILLING_RECONCILER_STORE": url, "CI": "true"}
    results: list[Run] = []

    def step(label: str, args: list[str], expected: int = 0) -> Run:
        log = workdir / (re.sub(r"[^a-z0-9]+", "-", label).strip("-") + ".log")
        code, wall, cpu, peak = run(args, workdir, env, log)
        result = Run(name, label, code, wall, cpu, peak, expected)
        results.append(result)
        flag = "" if result.ok else "   <-- " + ("exit code" if code != expected else "target missed")
        print(f"  {name:<10} {label:<18} exit {code}  {wall:7.2f} s wall  {cpu:7.2f} s CPU  {peak:6.0f} MB{flag}",
              flush=True)
        if code != expected:
            tail = log.read_text(errors="replace")[-2000:]
            print(f"    (expected exit {expected}; last output:)\n{tail}", flush=True)
        return result

    step("init", ["init"])
    step("validate (cold)", ["validate"])
    step("apply", ["apply", "--auto-approve"])
    for _ in range(runs):
        step("plan (no-op)", ["plan", "--detailed-exitcode"], expected=0)
    changed = change_one_contract(workdir / "manifests", customers // 2)
    for i in range(runs):
        result = step("plan (1 change)", ["plan", "--detailed-exitcode"], expected=2)
        if i == 0 and result.exit_code == 2:
            text = (workdir / "plan-1-change.log").read_text()
            if "Plan: 0 to create, 1 to update, 0 to replace, 0 to archive." not in text or "-/+ overrides" not in text:
                print(f"    unexpected plan after changing {changed}:\n{text[-2000:]}")
                result.exit_code = -1
    return results


def start_postgres():
    """tests/pgserver.py's start_server(), imported by path (tests/ is not a package on sys.path)."""
    spec = importlib.util.spec_from_file_location("bench_pgserver", ROOT / "tests" / "pgserver.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module.start_server()


def summarise(results: list[Run]) -> list[tuple[str, str, float, float, float, float | None, bool]]:
    """One row per (store, step): median wall and CPU, largest peak, whether all runs were ok."""
    rows = []
    keys = list(dict.fromkeys((r.store, r.step) for r in results))
    for store, step in keys:
        group = [r for r in results if (r.store, r.step) == (store, step)]
        rows.append((store, step, statistics.median(r.wall for r in group), statistics.median(r.cpu for r in group),
                     max(r.peak_mb for r in group), group[0].target, all(r.ok for r in group)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--runs", type=int, default=3, help="runs of each plan (the median is reported)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    base.mkdir(parents=True, exist_ok=True)
    account = base / "account"
    if not account.exists():
        generate(args.customers, account)
    print(f"Account: {args.customers} customers + {args.customers} contracts ({2 * args.customers + 7} objects) "
          f"in {account}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    results: list[Run] = []
    server = None
    try:
        for store in stores:
            workdir = base / store
            shutil.rmtree(workdir, ignore_errors=True)
            if store == "sqlite":
                url = "sqlite:///.billing-reconciler/state.db"
            elif store == "postgres":
                server = start_postgres()
                url = server.create_database("bench_reconcile")
            else:
                parser.error(f"unknown store {store!r}")
            results += bench_store(store, url, account, workdir, args.runs, args.customers)
            if server is not None:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\n| store | step | wall s | CPU s | peak MB | target | |\n|---|---|---:|---:|---:|---|---|")
    for store, step, wall, cpu, peak, target, ok in summarise(results):
        shown = f"<= {target:g} s" if target is not None else ""
        print(f"| {store} | {step} | {wall:.2f} | {cpu:.2f} | {peak:.0f} | {shown} | {'ok' if ok else 'MISSED'} |")
    print(f"\nPeak memory target: <= {MEMORY_TARGET_MB} MB per process; wall and CPU are medians of "
          f"{args.runs} run(s) for the plans. Load average now {os.getloadavg()[0]:.2f}.")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} run(s) missed a target or exited with the wrong code.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
