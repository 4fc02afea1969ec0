from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MANIFESTS = ROOT / "manifests"

# The manifest parse cache lives in the user's cache directory: keep the tests' out of ~/.cache.
os.environ.setdefault("BILLING_RECONCILER_CACHE_DIR", tempfile.mkdtemp(prefix="billing-reconciler-test-cache-"))


@pytest.fixture
def example_tree(tmp_path: Path) -> Path:
    """A copy of the shipped example account in a fresh working directory."""
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    return tmp_path


def cli_command() -> list[str]:
    """The installed console script (or the module, where it is not installed)."""
    exe = Path(sys.executable).with_name("billing-reconciler")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "billing_reconciler.cli"]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a real subprocess."""
    command = cli_command()
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    result = subprocess.run([*command, *args], cwd=cwd, env=full_env, input=input,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


# Two usage events of the example account (by its aliases) and a manifest edit that halves the
# data-export price: what the invoice-impact tests plan with.
WIDGETS_EVENTS = "\n".join(json.dumps(e) for e in [
    {"transaction_id": "t1", "customer_id": "team@widgetsexpress.com", "event_type": "api_call",
     "timestamp": "2024-11-03T10:00:00Z", "properties": {"region": "US"}},
    {"transaction_id": "t2", "customer_id": "widgets-express-prod", "event_type": "data_export",
     "timestamp": "2024-11-05T10:00:00Z", "properties": {"region": "US", "gb": 10}},
]) + "\n"

EXPORT_DISCOUNT = """  overrides:
    - key: export-discount
      starting_at: 2024-11-01T00:00:00Z
      type: MULTIPLIER
      multiplier: 0.5
      product: data-export
  commits:
"""


@pytest.fixture
def emulator_server(tmp_path: Path):
    """`emulator serve` as a subprocess on a free port: (base_url, token, data_dir); see
    tests/http_emulator.py. Stopped (SIGTERM) after the test."""
    from .http_emulator import start_emulator

    with start_emulator(tmp_path / "emulator-data") as served:
        yield served


def store_lock_held(store_url: str) -> bool:
    """True once an apply holds the store lock (it writes only inside that transaction)."""
    if store_url.startswith("sqlite"):
        return Path(store_url[len("sqlite:///"):] + ".lock-info").exists()
    import psycopg

    dsn = store_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()
        return bool(row and row[0])


from .pgserver import postgres_server, postgres_url  # noqa: F401,E402
