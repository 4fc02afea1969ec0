"""Input the two YAML parsers read differently is an error at its line, never a silent truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_reconciler.manifests import parse as parse_module
from billing_reconciler.manifests.loader import load_manifests
from tests.conftest import run_cli

PRODUCTS = Path("manifests/catalog/products.yaml")


def _insert_before_second_document(path: Path, text: str) -> int:
    """Insert `text` at the end of the first document's last line; return that line's number."""
    source = path.read_text()
    at = source.index("\n---", 10)
    path.write_text(source[:at] + text + source[at:])
    return source.count("\n", 0, at) + 1


def test_a_nul_byte_is_an_error_at_its_line_not_a_shorter_account(example_tree: Path):
    # Mutation caught: parsing without the character check (yaml_rs stops at the NUL: 17 objects).
    line = _insert_before_second_document(example_tree / PRODUCTS, "\x00")
    result = run_cli("validate", cwd=example_tree)
    assert result.returncode == 1 and "Valid" not in result.stdout
    assert f"{PRODUCTS}:{line}:" in result.stderr and "a NUL byte is not allowed in YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_nul_byte_never_lets_plan_prune_archive(example_tree: Path):
    # Mutation caught: the same; the objects after the NUL would be planned as archived.
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    _insert_before_second_document(example_tree / PRODUCTS, "\x00")
    result = run_cli("plan", "--prune", cwd=example_tree)
    assert result.returncode == 1 and "archive_" not in result.stdout
    assert "a NUL byte is not allowed" in result.stderr


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f", "\x9f", "\ufffe"])
def test_other_characters_yaml_forbids_are_located(example_tree: Path, char: str):
    # Mutation caught: a character class that lets through what ruamel refuses and yaml_rs reads.
    line = _insert_before_second_document(example_tree / PRODUCTS, f"  # {char}")
    result = load_manifests(example_tree / "manifests")
    (problem,) = result.problems
    assert (problem.file.endswith("products.yaml"), problem.line) == (True, line)
    assert f"U+{ord(char):04X} is not allowed in YAML" in problem.message


def test_fmt_check_locates_the_nul_byte_too(example_tree: Path):
    line = _insert_before_second_document(example_tree / PRODUCTS, "\x00")
    result = run_cli("fmt", "--check", cwd=example_tree)
    assert result.returncode == 1 and f"{PRODUCTS}:{line}:" in result.stderr


def test_fewer_documents_than_markers_is_an_error(example_tree: Path, monkeypatch: pytest.MonkeyPatch):
    # Mutation caught: trusting the fast parser's document count. Simulates a parser that drops
    # the last document of a file for some other input.
    real = parse_module.fast_parse
    monkeypatch.setattr(parse_module, "fast_parse", lambda text: (real(text) or [None])[:-1] or None)
    source = (example_tree / PRODUCTS).read_text()
    last_marker_line = source[:source.rindex("\n---")].count("\n") + 2
    result = load_manifests(example_tree / "manifests")
    assert [(p.line, "parsers disagree" in p.message) for p in result.problems
            if p.file.endswith("products.yaml")] == [(last_marker_line, True)]


def test_documents_and_markers_agree_on_the_shipped_account(example_tree: Path):
    assert load_manifests(example_tree / "manifests").ok
