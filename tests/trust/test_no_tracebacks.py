"""Bad input that used to end in a traceback: each is now one clear error (or is accepted)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.workflow.gitutil import commit_all, init_repo, shallow_clone

GOOD = ('{"transaction_id": "%s", "customer_id": "widgets-express-prod", "event_type": "data_export", '
        '"timestamp": "2024-11-05T10:00:00Z", "properties": {"region": "US", "gb": 2}}')


@pytest.fixture
def applied(example_tree: Path) -> Path:
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    return example_tree


def test_a_non_utf8_line_is_reported_and_the_good_lines_kept(applied: Path):
    # Mutation caught: opening the events file strictly as UTF-8 (UnicodeDecodeError mid-ingest).
    data = (GOOD % "a").encode() + b"\n" + (GOOD % "b\xff").encode("latin-1") + b"\n" + (GOOD % "c").encode() + b"\n"
    (applied / "events.jsonl").write_bytes(data)
    result = run_cli("ingest", "events.jsonl", cwd=applied)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "events.jsonl:line 2: not UTF-8 text (byte 0xff at column" in result.stderr
    assert "Ingested 2 event(s)" in result.stdout
    usage = run_cli("plan", "--usage", "events.jsonl", cwd=applied)
    assert usage.returncode == 1 and "line 2: not UTF-8 text" in usage.stderr and "Traceback" not in usage.stderr


@pytest.mark.parametrize("line", ["[" * 100_000 + "]" * 100_000,
                                  (GOOD % "deep").replace('"gb": 2', '"gb": ' + "[" * 500 + "]" * 500)])
def test_a_deeply_nested_line_is_a_bad_line(applied: Path, line: str):
    # Mutation caught: RecursionError escaping the line parser (100k-deep JSON) or the bounds walk.
    (applied / "events.jsonl").write_text(line + "\n" + GOOD % "ok" + "\n")
    result = run_cli("ingest", "events.jsonl", cwd=applied)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "line 1: " in result.stderr and "nested too deeply" in result.stderr
    assert "Ingested 1 event(s)" in result.stdout


def test_a_csv_with_a_byte_order_mark_is_accepted(applied: Path):
    # Mutation caught: reading CSV as plain utf-8 (the BOM glues onto the first header name and
    # the whole file is refused for lacking transaction_id).
    text = "transaction_id,customer_id,event_type,timestamp,gb\nc1,widgets-express-prod,data_export,2024-11-05T10:00:00Z,3\n"
    (applied / "events.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = run_cli("ingest", "events.csv", cwd=applied)
    assert result.returncode == 0, result.stderr
    assert "Ingested 1 event(s)" in result.stdout


@pytest.mark.parametrize("end", ["9999-12-31", "9000-01-01T00:00:00Z"])
def test_invoices_end_at_the_end_of_the_calendar_is_a_usage_error(applied: Path, end: str):
    # Mutation caught: no bound on --end (ValueError: year 10000 is out of range, a traceback).
    result = run_cli("invoices", "--end", end, cwd=applied)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--end" in result.stderr and "must be before 9000-01-01T00:00:00Z" in result.stderr


def test_an_event_at_the_end_of_the_calendar_is_a_bad_line(applied: Path):
    (applied / "events.jsonl").write_text(GOOD.replace("2024-11-05", "9999-12-31") % "far" + "\n")
    result = run_cli("plan", "--usage", "events.jsonl", cwd=applied)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "too far in the future" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_lock_timeout_must_be_a_finite_number_of_seconds(applied: Path, value: str):
    # Mutation caught: click's float type for --lock-timeout (nan reached the lock wait).
    result = run_cli("apply", "--auto-approve", "--lock-timeout", value, cwd=applied)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--lock-timeout" in result.stderr and "is not a number of seconds" in result.stderr


@pytest.mark.parametrize("content, says", [
    ("[]", "unexpected structure"),
    ('{"format_version": "1", "operations": [{"op": "create_product", "address": "Product/x", "action": "create"}]}',
     "missing field 'request'"),
    ('{"format_version": "1", "operations": "all of them"}', "unexpected structure"),
    ('{"format_version": "1", "store": "here", "operations": []}', "unexpected structure"),
])
def test_a_malformed_plan_file_is_a_clear_error(applied: Path, content: str, says: str):
    # Mutation caught: reading a plan file's structure without catching its errors (a traceback).
    from billing_reconciler.plan.plan import FORMAT_VERSION

    (applied / "plan.json").write_text(content.replace('"1"', json.dumps(FORMAT_VERSION)))
    result = run_cli("apply", "plan.json", cwd=applied)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"plan.json is not a plan file written by `billing-reconciler plan --out` ({says})" in result.stderr


def test_schemas_into_an_unwritable_place_is_a_clear_error(tmp_path: Path):
    # Mutation caught: the OSError of writing escaping the command.
    result = run_cli("schemas", "--out", "/proc/x", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot write the schemas to /proc/x/" in result.stderr


def test_an_empty_from_ref_is_refused_not_a_plan_against_the_store(applied: Path):
    # Mutation caught: `if from_ref:` (an empty ref silently planned against the store).
    (applied / "manifests" / "catalog" / "products.yaml").unlink()
    result = run_cli("plan", "--from-ref", "", cwd=applied)
    assert result.returncode == 1 and "--from-ref needs a git revision" in result.stderr
    assert "archive" not in result.stdout and "Plan:" not in result.stdout


def test_the_suggested_fetch_quotes_the_ref(tmp_path: Path, example_tree: Path):
    # Mutation caught: the ref pasted into the shell line unquoted ($(...) would run when copied).
    origin = init_repo(example_tree)
    commit_all(origin, "the example account")
    clone = shallow_clone(origin, tmp_path / "ci", "main")
    ref = "origin/feature$(touch PWNED)"
    result = run_cli("plan", "--from-ref", ref, cwd=clone)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    expected = f"git fetch --depth=1 origin {shlex.quote('feature$(touch PWNED)')}"
    assert expected in result.stderr, result.stderr
    bare = run_cli("plan", "--from-ref", "topic$(id)", cwd=clone)
    assert f"git fetch --depth=1 origin {shlex.quote('topic$(id)')}" in bare.stderr
    assert f"--from-ref {shlex.quote('origin/topic$(id)')}" in bare.stderr
