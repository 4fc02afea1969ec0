"""Symlinks in manifests/ are errors located at the link: never followed, never a traceback.

Decision: an error, not a skip with a warning. Skipping would make the objects behind the link
look deleted, so `plan --prune` would archive them; the run must fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.workflow.gitutil import commit_all, init_repo

SECRET = "apiVersion: billing-reconciler/v1\nkind: Product\nmetadata: {name: leak}\nspec: {nme: TOP-SECRET-CONTENT}\n"


def _link(tree: Path, name: str, target: str | Path) -> Path:
    link = tree / "manifests" / name
    os.symlink(target, link)
    return link


@pytest.mark.parametrize("kind", ["outside-file", "dangling", "loop", "directory"])
def test_a_symlink_is_a_located_error(example_tree: Path, tmp_path: Path, kind: str):
    # Mutation caught: reading through the link (path.read_bytes / os.walk followlinks) or letting
    # its OSError escape as a traceback.
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(SECRET)
    name = {"outside-file": "leak.yaml", "dangling": "gone.yaml", "loop": "loop.yaml", "directory": "shared"}[kind]
    target = {"outside-file": outside / "secret.yaml", "dangling": outside / "missing.yaml",
              "loop": example_tree / "manifests" / "loop.yaml", "directory": outside}[kind]
    _link(example_tree, name, target)
    for args in (["validate"], ["fmt", "--check"]):
        result = run_cli(*args, cwd=example_tree)
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr and "TOP-SECRET" not in result.stdout + result.stderr
        assert f"manifests/{name}:1:1:" in result.stderr and "is a symlink" in result.stderr, result.stderr


def test_a_symlinked_directory_never_lets_prune_archive_its_objects(example_tree: Path, tmp_path: Path):
    # Mutation caught: os.walk silently not descending into the link (its objects look deleted).
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    moved = tmp_path / "customers-elsewhere"
    (example_tree / "manifests" / "customers").rename(moved)
    _link(example_tree, "customers", moved)
    result = run_cli("plan", "--prune", cwd=example_tree)
    assert result.returncode == 1 and "archive_" not in result.stdout
    assert "manifests/customers:1:1:" in result.stderr


def test_a_fifo_named_like_a_manifest_does_not_hang(example_tree: Path):
    os.mkfifo(example_tree / "manifests" / "pipe.yaml")
    result = run_cli("validate", cwd=example_tree)
    assert result.returncode == 1 and "is not a regular file" in result.stderr


def test_a_committed_symlink_is_refused_by_plan_from_ref(example_tree: Path, tmp_path: Path):
    # Mutation caught: reading a git symlink blob (its target path) as a manifest's text.
    repo = init_repo(example_tree)
    _link(example_tree, "leak.yaml", "/etc/hostname")
    commit_all(repo, "a link")
    (example_tree / "manifests" / "leak.yaml").unlink()
    result = run_cli("plan", "--from-ref", "HEAD", cwd=example_tree)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "HEAD:manifests/leak.yaml:1:1: is a symlink" in result.stderr, result.stderr
