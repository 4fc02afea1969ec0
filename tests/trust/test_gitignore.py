"""Working files stay out of git: `.billing-reconciler/` ignores itself (`.gitignore` holding `*`),
so `git add -A` in a real repository never stages the store, the parse cache or plans put there.

Mutations caught: init not calling ignore_working_files (the store is staged); the parse cache
written into the work tree (validate before init would stage it); a .gitignore that ignores less
than everything (a plan file there is staged)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import run_cli


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _staged_after_add_all(repo: Path) -> list[str]:
    _git("add", "-A", cwd=repo)
    return _git("diff", "--cached", "--name-only", cwd=repo).split()


def test_init_apply_and_plans_leave_nothing_for_git_add(example_tree: Path):
    _git("init", "-q", cwd=example_tree)
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    run_cli("plan", "--out", ".billing-reconciler/plan.json", cwd=example_tree, check=True)
    assert (example_tree / ".billing-reconciler" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (example_tree / ".billing-reconciler" / "state.db").exists()
    staged = _staged_after_add_all(example_tree)
    assert staged and all(name.startswith("manifests/") for name in staged), staged


def test_validate_before_init_keeps_its_cache_out_of_git(example_tree: Path, tmp_path: Path):
    # The parse cache lives in the user's cache directory (manifests/cache.py), never in the work
    # tree: validate writes nothing there for git to stage.
    _git("init", "-q", cwd=example_tree)
    cache = tmp_path / "user-cache"
    run_cli("validate", cwd=example_tree, env={"BILLING_RECONCILER_CACHE_DIR": str(cache)}, check=True)
    assert any(cache.iterdir())
    assert not (example_tree / ".billing-reconciler").exists()
    assert not any(name.startswith(".billing-reconciler") for name in _staged_after_add_all(example_tree))


def test_init_keeps_a_gitignore_the_user_wrote(example_tree: Path):
    (example_tree / ".billing-reconciler").mkdir()
    (example_tree / ".billing-reconciler" / ".gitignore").write_text("state.db\n")
    run_cli("init", cwd=example_tree, check=True)
    assert (example_tree / ".billing-reconciler" / ".gitignore").read_text() == "state.db\n"
