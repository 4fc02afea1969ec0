"""`plan --from-ref REF`: the working tree planned against a git revision's manifests, no store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_MANIFESTS, EXPORT_DISCOUNT, run_cli
from tests.conftest import WIDGETS_EVENTS as EVENTS

from .gitutil import commit_all, git, init_repo, shallow_clone

CONTRACT = Path("manifests/customers/widgetsexpress.yaml")
# No store: a plan --from-ref must never create or open one.
NO_STORE = {"BILLING_RECONCILER_STORE": "postgresql+psycopg://nobody@127.0.0.1:1/none"}


def plan(repo: Path, *args: str, expect: int | None = None, cwd: Path | None = None):
    result = run_cli("plan", *args, cwd=cwd or repo, env=NO_STORE)
    if expect is not None:
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    shutil.copytree(EXAMPLE_MANIFESTS, root / "manifests")
    (root / ".gitignore").write_text(".billing-reconciler/\n")
    commit_all(root, "the example account")
    return root


def _rename_contract(repo: Path) -> None:
    path = repo / CONTRACT
    path.write_text(path.read_text().replace("name: WidgetsExpress 2024\n", "name: WidgetsExpress 2024-25\n"))


def test_the_working_tree_against_a_revision(repo: Path):
    assert plan(repo, "--from-ref", "HEAD", "--detailed-exitcode", expect=0).stdout.startswith("No changes.")
    _rename_contract(repo)
    result = plan(repo, "--from-ref", "HEAD", "--detailed-exitcode", expect=2)
    assert "~ Contract/widgetsexpress-2024" in result.stdout
    assert 'name: "WidgetsExpress 2024" -> "WidgetsExpress 2024-25"' in result.stdout
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to archive." in result.stdout
    assert "against git revision HEAD (commit " in result.stderr

    data = json.loads(plan(repo, "--from-ref", "HEAD", "--format", "json", expect=0).stdout)
    [op] = data["operations"]
    assert op["op"] == "edit_contract"
    assert op["request"]["body"] == {"customer_id": "${Customer/widgetsexpress.id}",
                                     "contract_id": "${Contract/widgetsexpress-2024.id}",
                                     "update_contract_name": "WidgetsExpress 2024-25"}
    assert data["from_ref"]["ref"] == "HEAD" and len(data["from_ref"]["commit"]) == 40
    assert data["from_ref"]["objects"] == 22
    markdown = plan(repo, "--from-ref", "HEAD", "--format", "markdown", expect=0).stdout
    assert "Compared with git revision `HEAD`" in markdown and '"contract_id": "(known after apply)"' in markdown
    assert not (repo / ".billing-reconciler" / "state.db").exists()


def test_a_commit_between_two_revisions_and_removed_objects(repo: Path):
    first = git(repo, "rev-parse", "HEAD")
    (repo / "manifests" / "customers" / "seat-plans.yaml").unlink()
    _rename_contract(repo)
    commit_all(repo, "second")
    result = plan(repo, "--from-ref", first, "--format", "json", expect=0)
    data = json.loads(result.stdout)
    assert "Contract/acme-pro-2025" in data["unmanaged"]
    pruned = json.loads(plan(repo, "--from-ref", first, "--prune", "--format", "json", expect=0).stdout)
    archived = {o["address"] for o in pruned["operations"] if o["action"] == "archive"}
    assert {"Contract/acme-pro-2025", "Customer/acme"} <= archived
    # HEAD~1 works as well (a full clone has the history).
    assert plan(repo, "--from-ref", "HEAD~1", "--format", "json", expect=0).stdout == result.stdout.replace(
        first, git(repo, "rev-parse", "HEAD~1")).replace(f'"ref": "{first}"', '"ref": "HEAD~1"')


def test_manifests_directory_missing_at_the_revision_means_everything_is_new(tmp_path: Path):
    repo = init_repo(tmp_path / "repo")
    (repo / "README.md").write_text("billing\n")
    commit_all(repo, "empty")
    shutil.copytree(EXAMPLE_MANIFESTS, repo / "manifests")
    result = plan(repo, "--from-ref", "HEAD", expect=0)
    assert "Plan: 22 to create, 0 to update, 0 to replace, 0 to archive." in result.stdout
    assert "does not exist there: everything is new" in result.stderr


def test_only_manifest_files_count_hidden_and_other_files_are_ignored(repo: Path):
    (repo / "manifests" / "notes.txt").write_text("not yaml: {{{")
    (repo / "manifests" / ".drafts").mkdir()
    (repo / "manifests" / ".drafts" / "broken.yaml").write_text("kind: [")
    (repo / "manifests" / ".hidden.yaml").write_text("kind: [")
    commit_all(repo, "noise")
    assert plan(repo, "--from-ref", "HEAD", "--detailed-exitcode", expect=0)


def test_errors_in_the_old_revision_are_reported_as_such(repo: Path):
    path = repo / CONTRACT
    good = path.read_text()
    path.write_text(good.replace("    - key: prepaid-2024\n      type: PREPAID\n",
                                 "    - key: prepaid-2024\n      typ: PREPAID\n"))
    bad = commit_all(repo, "a typo")
    path.write_text(good)
    result = plan(repo, "--from-ref", bad, expect=1)
    assert f"{bad}:manifests/customers/widgetsexpress.yaml:" in result.stderr
    assert "spec.commits[0].typ: unknown field 'typ'" in result.stderr
    assert f"the manifests at {bad} (commit {bad[:12]}) have 2 problem(s)" in result.stderr or \
        f"the manifests at {bad} (commit {bad[:12]}) have 1 problem(s)" in result.stderr
    assert "--from-ref cannot compare with manifests that do not validate" in result.stderr
    # The working tree's own problems come first, shown with their working-tree paths.
    path.write_text(good.replace("type: PREPAID", "type: PREPAYED"))
    own = plan(repo, "--from-ref", "HEAD", expect=1)
    assert own.stderr.startswith("manifests/customers/widgetsexpress.yaml:")


def test_shallow_clone_says_what_to_fetch_and_works_once_fetched(repo: Path, tmp_path: Path):
    git(repo, "checkout", "-q", "-b", "change")
    _rename_contract(repo)
    commit_all(repo, "rename")
    git(repo, "checkout", "-q", "main")

    # As actions/checkout sets it up: one commit, a remote that fetches every branch.
    clone = shallow_clone(repo, tmp_path / "ci", "change")
    missing = plan(clone, "--from-ref", "origin/main", expect=1)
    assert "git revision 'origin/main' is not in this shallow clone" in missing.stderr
    assert "    git fetch --depth=1 origin main\n" in missing.stderr
    git(clone, "fetch", "-q", "--depth=1", "origin", "main")
    fetched = plan(clone, "--from-ref", "origin/main", "--detailed-exitcode", expect=2)
    assert "~ Contract/widgetsexpress-2024" in fetched.stdout

    # git clone --depth=1 --branch: a single-branch clone; the fetch must name where main goes.
    single = tmp_path / "single"
    git(tmp_path, "clone", "-q", "--depth=1", "--branch", "change", repo.resolve().as_uri(), str(single))
    missing = plan(single, "--from-ref", "origin/main", expect=1)
    command = "git fetch --depth=1 origin main:refs/remotes/origin/main"
    assert f"    {command}\n" in missing.stderr
    git(single, *command.split()[1:])
    assert plan(single, "--from-ref", "origin/main", "--detailed-exitcode", expect=2)

    # The parent of a shallow commit is not there either: deepen, or name a fetched branch.
    deeper = plan(single, "--from-ref", "HEAD~1", expect=1)
    assert "git fetch --deepen=50 origin" in deeper.stderr


@pytest.mark.parametrize("ref, fetch", [
    ("main2", "git fetch --depth=1 origin main2\nthen plan with --from-ref origin/main2"),
    ("0123456789abcdef0123456789abcdef01234567", "git fetch --depth=1 origin 0123456789abcdef0123456789abcdef01234567"),
    ("refs/tags/v1", "git fetch --depth=1 origin tag v1"),
])
def test_missing_refs_name_the_fetch(repo: Path, tmp_path: Path, ref: str, fetch: str):
    clone = shallow_clone(repo, tmp_path / "ci", "main")
    result = plan(clone, "--from-ref", ref, expect=1)
    assert f"    {fetch}" in result.stderr
    assert "Traceback" not in result.stderr


def test_refusals_outside_git_and_with_out(repo: Path, tmp_path: Path):
    refused = plan(repo, "--from-ref", "HEAD", "--out", "plan.json", expect=1)
    assert "--out cannot be used with --from-ref" in refused.stderr and not (repo / "plan.json").exists()
    outside = tmp_path / "plain"
    shutil.copytree(EXAMPLE_MANIFESTS, outside / "manifests")
    result = plan(outside, "--from-ref", "HEAD", expect=1)
    assert "is not inside a git repository" in result.stderr


def test_from_a_subdirectory_with_another_manifests_directory(repo: Path):
    git(repo, "mv", "manifests", "billing")
    commit_all(repo, "move")
    (repo / "tools").mkdir()
    result = run_cli("--manifests", "../billing", "plan", "--from-ref", "HEAD", "--detailed-exitcode",
                     cwd=repo / "tools", env=NO_STORE)
    assert result.returncode == 0, result.stderr


def test_invoice_impact_between_revisions(repo: Path):
    (repo / "usage.jsonl").write_text(EVENTS)
    path = repo / CONTRACT
    path.write_text(path.read_text().replace("  commits:\n", EXPORT_DISCOUNT, 1))
    result = plan(repo, "--from-ref", "HEAD", "--usage", "usage.jsonl", "--format", "json", expect=0)
    impact = json.loads(result.stdout)["invoice_impact"]
    # As tests/e2e/test_plan_usage.py: the 1-cent API call is drawn from the $10,000 commit both
    # times (subtotal = total + 1, balance 1,000,000 - 1).
    assert impact["customers"] == [{"customer": "widgetsexpress", "before": 1100090, "after": 1100045,
                                    "delta": -45,
                                    "subtotal": {"before": 1100091, "after": 1100046},
                                    "drawdown": {"before": -1, "after": -1},
                                    "balances": [{"balance": "widgetsexpress-2024/prepaid-2024",
                                                  "before": 999999, "after": 999999}]}]
    markdown = plan(repo, "--from-ref", "HEAD", "--usage", "usage.jsonl", "--format", "markdown", expect=0).stdout
    assert "| `widgetsexpress` | total | $11,000.90 | $11,000.45 | -$0.45 |" in markdown
