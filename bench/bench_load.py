"""Load benchmark: cold and warm `billing-reconciler validate` on a synthetic account.

Generates N customers + N contracts (default 10,000) into a temporary directory, then runs the
real console script as a subprocess: once with an empty parse cache (cold), then with the cache
filled (warm); and `load_manifests()` alone in a bare Python process on that cache (warm-lib, the
loader's share of a warm run, without the command line's own imports). Prints wall seconds and
peak memory per run, against the targets of DESIGN.md §8.

Peak memory is reported two ways: the largest single process (wait4's ru_maxrss, which covers
the CLI and each parse worker) and the whole process tree (sum of VmRSS, sampled every 10 ms),
since a cold run of a big tree parses in worker processes. CPU seconds (CLI plus workers) are
printed too: wall time suffers from anything else running on the machine, CPU time much less.

    python bench/bench_load.py [--customers 10000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_account import generate  # noqa: E402

TARGETS = {"cold": 6.0, "warm": 0.6, "warm-lib": 0.6}  # seconds

# The warm load without the CLI: only the manifests package, against the cache the CLI filled.
# Tells the loader's share of a warm `validate` from the import cost of the command line itself.
LIBRARY_WARM = [sys.executable, "-c", (
    "from billing_reconciler.manifests import ManifestCache, load_manifests\n"
    "result = load_manifests('manifests', cache=ManifestCache.for_manifests('manifests'))\n"
    "assert result.ok, result.problems[:5]\n"
    "print(f'Valid: {len(result.manifests)} objects in {result.files} files.')\n")]
MEMORY_TARGET_MB = 600


def cli_command() -> list[str]:
    exe = Path(sys.executable).with_name("billing-reconciler")
    found = str(exe) if exe.exists() else shutil.which("billing-reconciler")
    return [found] if found else [sys.executable, "-m", "billing_reconciler.cli"]


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS of `root` and its descendants (Linux /proc; 0 elsewhere). Follows the
    children lists only, so that sampling steals little CPU from the run being measured."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE_KB
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def run(args: list[str], cwd: Path) -> tuple[float, float, float, float]:
    """(seconds, largest process MB, process tree MB, CPU seconds) of one run; fails on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "NO_COLOR": "1"})
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.is_set():
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    if Path("/proc").is_dir():
        sampler.start()
    stdout, stderr = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}\n{stdout.decode()}\n{stderr.decode()}")
    largest_mb = usage.ru_maxrss / 1024  # kB on Linux
    # CPU time of the CLI and its workers: unlike wall time, not inflated by other load on the machine.
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, largest_mb, peak_tree / 1024, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind; the median is reported")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        files = generate(args.customers, work / "manifests")
        lines = sum(p.read_text().count("\n") for p in files)
        print(f"account: {args.customers} customers + {args.customers} contracts, {len(files)} files, "
              f"{lines} lines; {os.cpu_count()} CPUs")
        command = [*cli_command(), "--manifests", "manifests", "validate"]
        # The parse cache lives in the user's cache directory; point it into the work directory.
        cache_dir = work / ".cache"
        os.environ["BILLING_RECONCILER_CACHE_DIR"] = str(cache_dir)
        results: dict[str, list[tuple[float, float, float, float]]] = {"cold": [], "warm": [], "warm-lib": []}
        for _ in range(args.runs):
            shutil.rmtree(cache_dir, ignore_errors=True)
            results["cold"].append(run(command, work))
            results["warm"].append(run(command, work))
            results["warm-lib"].append(run(LIBRARY_WARM, work))
        failed = False
        for name, runs in results.items():
            seconds = statistics.median(r[0] for r in runs)
            largest = max(r[1] for r in runs)
            tree = max(r[2] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            ok = seconds <= TARGETS[name] and max(largest, tree) <= MEMORY_TARGET_MB
            failed |= not ok
            print(f"{name:8} validate: {seconds:6.2f} s (median of {len(runs)}: "
                  f"{', '.join(f'{r[0]:.2f}' for r in runs)}; CPU {cpu:.2f} s), "
                  f"peak RSS {largest:5.0f} MB largest process, "
                  f"{tree:5.0f} MB process tree   target <= {TARGETS[name]} s, <= {MEMORY_TARGET_MB} MB  "
                  f"{'ok' if ok else 'MISSED'}")
        return 1 if failed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
