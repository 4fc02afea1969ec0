"""A store that cannot be reached is bad input: one located error line, exit 1, no traceback,
and the password in the URL is not printed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args", [["plan"], ["apply", "--auto-approve"], ["show"], ["history"], ["init"],
                                  ["invoices"]])
def test_unreachable_postgresql_store(example_tree: Path, args):
    url = f"postgresql+psycopg://billing:hunter2@127.0.0.1:{_closed_port()}/billing"
    result = run_cli("--store", url, *args, cwd=example_tree)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
    assert "the store postgresql+psycopg://billing:***@127.0.0.1" in result.stderr, result.stderr
    assert "failed:" in result.stderr and "Check the --store URL" in result.stderr
