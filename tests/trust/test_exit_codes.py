"""Exit codes CI can rely on: 2 only means "changes" under `plan --detailed-exitcode`; a usage
error exits 1 with click's message kept.

Mutation caught: dropping the `exc.exit_code = 1` in cli._Group (usage errors exit 2 again, and a
CI step reading 2 as "changes" would post a plan that never ran)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("args, message", [
    (["--bogus", "plan"], "No such option '--bogus'"),
    (["plan", "--bogus"], "No such option '--bogus'"),
    (["plan", "--detailed-exitcode", "--format", "xml"], "Invalid value for '--format'"),
    (["show", "--format", "yaml"], "Invalid value for '--format'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["ingest"], "Missing argument 'FILE'"),
    (["plan", "--out"], "Option '--out' requires an argument"),
    (["invoices", "--start", "2025-01-01", "--end", "2024-01-01"], "--start must be before --end"),
])
def test_usage_errors_exit_1_with_clicks_message(tmp_path: Path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing opened or created


def test_detailed_exitcode_still_2_for_changes_and_0_for_none(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree).returncode == 2
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree).returncode == 0
