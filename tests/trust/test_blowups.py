"""Inputs that used to hang or blow up: refused fast, located; locating is linear in the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from billing_reconciler.manifests import locate as locate_module
from billing_reconciler.manifests.errors import PendingProblem
from billing_reconciler.manifests.loader import load_manifests, locate_all
from billing_reconciler.manifests.reading import MAX_FILE_BYTES
from tests.conftest import run_cli


def _alias_bomb(levels: int = 10, width: int = 10) -> str:
    lines = ["apiVersion: billing-reconciler/v1", "kind: Product", "metadata: {name: bomb}", "spec:",
             "  name: Bomb", "  type: FIXED", "  a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", [["fmt", "--check"], ["fmt"], ["validate"]])
def test_an_alias_bomb_is_refused_fast_and_located(tmp_path: Path, command: list[str]):
    # Mutation caught: fmt handing the file to the round-trip loader and formatter without the
    # fast parser's check first (ran past 120 s).
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "bomb.yaml").write_text(_alias_bomb())
    started = time.monotonic()
    result = run_cli(*command, cwd=tmp_path)
    assert time.monotonic() - started < 30  # ~1 s here; was > 120 s
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "manifests/bomb.yaml:8:12:" in result.stderr and "alias bomb" in result.stderr, result.stderr


def _many_documents(count: int) -> str:
    doc = ("apiVersion: billing-reconciler/v1\nkind: Customer\nmetadata: {{name: c{i}}}\n"
           "spec:\n  name: Customer {i}\n")
    return "---\n".join(doc.format(i=i) for i in range(count))


def test_one_problem_parses_only_its_own_document(monkeypatch: pytest.MonkeyPatch):
    # Mutation caught: re-reading the whole file with the round-trip loader (super-linear: a 20 MB
    # file took 16.5 s, 200 MB over 20 min).
    text = _many_documents(5000)
    parsed: list[int] = []
    real = locate_module.load_documents_rt
    monkeypatch.setattr(locate_module, "load_documents_rt", lambda t, *a: parsed.append(len(t)) or real(t, *a))
    problem = PendingProblem("big.yaml", 4321, "Customer/c4321", ("spec", "nmae"), "unknown field", at_key=True)
    (located,) = locate_all([problem], {"big.yaml": text.replace("c4321}\nspec:\n", "c4321}\nspec:\n  nmae: x\n")})
    assert located.line == 4321 * 6 + 5 and located.column == 3
    assert len(parsed) == 1 and parsed[0] < 200  # that document (~115 characters), not 560 kB


def test_past_the_budget_problems_land_on_their_documents_first_line(monkeypatch: pytest.MonkeyPatch):
    # Mutation caught: no bound on round-trip parses per file (a typo in each of 100,000 documents).
    monkeypatch.setattr(locate_module.FileDocuments, "BUDGET", 3)
    text = _many_documents(10)
    problems = [PendingProblem("f.yaml", i, f"Customer/c{i}", ("spec", "name"), "x") for i in range(10)]
    lines = [(p.line, p.column) for p in locate_all(problems, {"f.yaml": text})]
    assert lines[:3] == [(5, 9), (11, 9), (17, 9)]  # located: the value of spec.name
    assert lines[3:] == [(6 * i, 1) for i in range(3, 10)]  # each document's '---' line


def test_a_file_over_the_size_limit_is_refused_with_the_size_named(tmp_path: Path):
    # Mutation caught: reading a file of any size (200 MB ran past 20 minutes).
    (tmp_path / "huge.yaml").write_bytes(b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    result = load_manifests(tmp_path)
    (problem,) = result.problems
    assert (problem.file.endswith("huge.yaml"), problem.line) == (True, 1)
    assert "larger than the 16 MB a manifest file may be; split it into several files" in problem.message
