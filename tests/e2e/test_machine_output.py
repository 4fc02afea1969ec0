"""Machine-friendly behaviour through the real console script: `--format json` on every command
that prints something, colour only on a terminal (and never with --no-color / NO_COLOR), CI=true
meaning no prompts."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

ANSI = "\x1b["
EVENTS = (
    '{"transaction_id": "t1", "customer_id": "widgetsexpress-prod", "event_type": "api_call", '
    '"timestamp": "2024-11-02T00:00:00Z", "properties": {"region": "US"}}\n'
    "not json\n"
)


def _json(*args: str, cwd: Path, expect: int = 0, env: dict[str, str] | None = None):
    result = run_cli(*args, "--format", "json", cwd=cwd, env=env)
    assert result.returncode == expect, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_every_command_with_output_speaks_json(example_tree: Path):
    assert _json("validate", cwd=example_tree)["valid"] is True
    init = _json("init", cwd=example_tree)
    assert init["created"] is True and init["schema_version"] >= 1
    plan = _json("plan", cwd=example_tree)
    assert plan["summary"]["create"] > 0
    applied = _json("apply", "--auto-approve", cwd=example_tree)
    assert applied["applied"] is True and applied["operations"] == len(plan["operations"])
    nothing = _json("apply", "--auto-approve", cwd=example_tree)
    assert nothing == {**nothing, "applied": False, "operations": 0, "serial": applied["serial"]}
    show = _json("show", "Customer/widgetsexpress", cwd=example_tree)
    assert [o["address"] for o in show["objects"]] == ["Customer/widgetsexpress"]
    assert _json("history", "--limit", "1", cwd=example_tree)["edits"][0]["serial"] == applied["serial"]

    (example_tree / "events.jsonl").write_text(EVENTS)
    ingested = _json("ingest", "events.jsonl", cwd=example_tree, expect=1)
    assert (ingested["inserted"], ingested["bad_lines"][0]["line"]) == (1, 2)
    invoices = _json("invoices", "--end", "2024-12-01", cwd=example_tree)
    assert "invoices" in invoices

    fmt = _json("fmt", "--check", cwd=example_tree)
    assert fmt["ok"] is True and fmt["changed"] == [] and len(fmt["unchanged"]) == 5
    assert _json("schemas", "--check", "--out", "schemas", cwd=example_tree, expect=1)["stale"]
    written = _json("schemas", "--out", "schemas", cwd=example_tree)["written"]
    assert any(path.endswith("billing-reconciler.schema.json") for path in written)

    for path in (example_tree / "manifests" / "customers").glob("*.yaml"):
        path.unlink()
    imported = _json("import", cwd=example_tree)["imported"]
    assert {"address": "Customer/widgetsexpress", "file": "manifests/imported/customers/widgetsexpress.yaml",
            "adopted": False} in imported  # in the store already: written, not adopted


def test_json_apply_never_asks(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    result = run_cli("apply", "--format", "json", cwd=example_tree)
    assert result.returncode == 1 and result.stdout == ""
    assert "pass --auto-approve" in result.stderr


def test_ci_true_refuses_to_prompt_even_on_a_terminal(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    output, code = _on_terminal(["apply"], cwd=example_tree, env={"CI": "true"})
    assert code == 1 and "refusing to apply without confirmation" in output
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree).returncode == 2  # nothing applied


@pytest.mark.parametrize("flags, env, coloured", [
    ([], {}, True),
    (["--no-color"], {}, False),
    ([], {"NO_COLOR": "1"}, False),
])
def test_colour_only_on_a_terminal_and_never_when_asked_not_to(example_tree: Path, flags, env, coloured):
    run_cli("init", cwd=example_tree, check=True)
    output, code = _on_terminal([*flags, "plan"], cwd=example_tree, env=env)
    assert code == 0 and "Plan:" in output
    assert (ANSI in output) is coloured
    piped = run_cli(*flags, "plan", cwd=example_tree, env={"NO_COLOR": ""})  # a pipe: never colour
    assert piped.returncode == 0 and ANSI not in piped.stdout


def _on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, int]:
    """Run the CLI with stdin/stdout/stderr on a pseudo-terminal; (everything printed, exit code)."""
    exe = Path(sys.executable).with_name("billing-reconciler")
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
    full_env.update({"TERM": "xterm-256color", **env})
    main, secondary = pty.openpty()
    process = subprocess.Popen([str(exe), *args], cwd=cwd, env=full_env, stdin=secondary, stdout=secondary,
                               stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError("the command waited for input: " + b"".join(chunks).decode(errors="replace"))
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal closed: the process exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return b"".join(chunks).decode(errors="replace"), process.wait(timeout=60)


def test_a_mistyped_target_is_an_error_not_an_empty_plan(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    result = run_cli("plan", "--detailed-exitcode", "--target", "Customer/widgetsexpres", cwd=example_tree)
    assert result.returncode == 1 and result.stdout == ""
    assert "--target Customer/widgetsexpres: no such object" in result.stderr
    assert "did you mean Customer/widgetsexpress?" in result.stderr
