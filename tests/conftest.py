from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MANIFESTS = ROOT / "manifests"


@pytest.fixture
def example_tree(tmp_path: Path) -> Path:
    """A copy of the shipped example account in a fresh working directory."""
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    return tmp_path


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a real subprocess."""
    exe = Path(sys.executable).with_name("billing-reconciler")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "billing_reconciler.cli"]
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    result = subprocess.run([*command, *args], cwd=cwd, env=full_env, input=input,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


from .pgserver import postgres_server, postgres_url  # noqa: F401,E402
