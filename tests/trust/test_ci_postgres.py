"""Without PostgreSQL the PostgreSQL tests skip on a laptop, and fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NEEDS_POSTGRES = '''
from tests import pgserver
from tests.pgserver import postgres_server  # noqa: F401


def _nowhere():
    raise pgserver.PostgresUnavailable("no initdb here (simulated)")


pgserver.find_bindir = _nowhere


def test_needs_postgres(postgres_server):
    pass
'''


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs_postgres.py").write_text(NEEDS_POSTGRES)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BILLING_RECONCILER_REQUIRE_POSTGRES")}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--rootdir",
                           str(tmp_path), str(tmp_path / "test_needs_postgres.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_under_ci_a_missing_postgresql_fails_the_run(tmp_path: Path, ci: str):
    # Mutation caught: pytest.skip regardless of CI (a green run that never touched PostgreSQL).
    result = _run(tmp_path, ci)
    assert result.returncode == 1, result.stdout
    assert "CI=true but the PostgreSQL tests cannot run: no initdb here (simulated)" in result.stdout


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_outside_ci_a_missing_postgresql_skips(tmp_path: Path, ci: str | None):
    result = _run(tmp_path, ci)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "no initdb here" in result.stdout
