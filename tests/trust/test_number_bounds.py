"""One stated bound on numbers (bounds.py), refused where they come in: ingest names the line,
manifests name file:line:column; nothing past it reaches the rating engine."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from billing_reconciler.bounds import out_of_bounds
from billing_reconciler.manifests.loader import load_manifests
from billing_reconciler.money import round_cents
from tests.conftest import run_cli

OUT = ["1e400", "99999999999999999999999999999999", "12345678901234567.5", "1000000000000000", "0.1234567891",
       "-1e15", "Infinity"]
IN = ["999999999999999", "99999999999999.9", "0.123456789", "1.50000000000000000000", "1e14", "0E-20", "-5"]


def _event(tx: str, gb: str) -> str:
    return ('{"transaction_id": "%s", "customer_id": "widgets-express-prod", "event_type": "data_export", '
            '"timestamp": "2024-11-05T10:00:00Z", "properties": {"region": "US", "gb": %s}}' % (tx, gb))


@pytest.mark.parametrize("text", OUT)
def test_out_of_bounds(text: str):
    assert out_of_bounds(Decimal(text)) is not None


@pytest.mark.parametrize("text", IN)
def test_within_bounds(text: str):
    # Mutation caught: a bound that refuses representations of fine numbers (trailing zeros, zero).
    assert out_of_bounds(Decimal(text)) is None


def test_ingest_refuses_each_bad_value_by_line_and_invoices_still_work(example_tree: Path):
    # Mutation caught: no bound at ingest (the values were stored, then `invoices` and
    # `plan --usage` died with decimal.InvalidOperation).
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    lines = [_event(f"bad-{i}", v) for i, v in enumerate(OUT)] + [_event("good", "12.5")]
    (example_tree / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("ingest", "events.jsonl", cwd=example_tree)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Ingested 1 event(s)" in result.stdout and f"{len(OUT)} bad line(s)" in result.stdout
    for number, value in enumerate(OUT, 1):
        assert f"line {number}: properties.gb:" in result.stderr
    assert "is too large: numbers may have at most 15 significant digits" in result.stderr
    invoices = run_cli("invoices", "--customer", "widgetsexpress", "--end", "2024-12-01", "--format", "json",
                       cwd=example_tree)
    assert invoices.returncode == 0, invoices.stderr
    assert json.loads(invoices.stdout)["invoices"]
    usage = run_cli("plan", "--usage", "events.jsonl", cwd=example_tree)
    assert "Traceback" not in usage.stderr and "InvalidOperation" not in usage.stderr


@pytest.mark.parametrize("price", ["10000000000000000000000000000000000000000", "0.0000000001", "1e400"])
def test_a_price_out_of_bounds_is_a_located_manifest_error(example_tree: Path, price: str):
    # Mutation caught: a Price type without the bound.
    path = example_tree / "manifests" / "catalog" / "rate-cards.yaml"
    lines = path.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.strip().startswith("price:"))
    lines[number] = lines[number].split("price:")[0] + f"price: {price}\n"
    path.write_text("".join(lines))
    (problem,) = load_manifests(example_tree / "manifests").problems
    assert (problem.line, problem.path) == (number + 1, "spec.rates[0].price")
    assert "numbers may have at most 15 significant digits" in problem.message


def test_rounding_a_large_total_to_cents_does_not_raise():
    # Mutation caught: quantize in the default 28-digit context (InvalidOperation past 28 digits).
    assert round_cents(Decimal("9" * 35 + ".5")) == Decimal("1" + "0" * 35)
