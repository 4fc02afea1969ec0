"""The pull-request workflow of examples/github-actions, run step by step as GitHub would run it.

A temporary git repository gets two commits: the manifests on main, then a change on a branch.
The pull-request workflow runs in a shallow clone of the branch (validate, fmt --check, plan
against the PostgreSQL store, the comment, the plan artifact), once more without the store
secret (plan --from-ref the base branch), then the branch is merged and the apply workflow
applies the reviewed plan artifact; re-running it is refused as stale. The nightly drift check
passes, then fails with exit 2 once the store is changed behind the manifests' back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLE_MANIFESTS, ROOT, run_cli
from tests.workflow.gha import Runner
from tests.workflow.gitutil import commit_all, git, init_repo, shallow_clone

EXAMPLES = ROOT / "examples" / "github-actions"
INSTALL = frozenset({"Install billing-reconciler"})
MARKER = "<!-- billing-reconciler plan -->"
CONTRACT_FILE = Path("manifests/customers/widgetsexpress.yaml")


def _edit(path: Path, change) -> None:
    yaml = YAML(typ="rt")
    docs = list(yaml.load_all(path.read_text()))
    change(docs)
    with path.open("w") as fh:
        yaml.dump_all(docs, fh)


def _change(docs) -> None:
    customer = next(d for d in docs if d["kind"] == "Customer")["spec"]
    contract = next(d for d in docs if d["kind"] == "Contract")["spec"]
    contract["name"] = "WidgetsExpress 2024-25"
    contract["overrides"] = [{"key": "cloud-discount", "starting_at": "2024-11-01T00:00:00Z", "entitled": True,
                              "type": "MULTIPLIER", "multiplier": 0.95, "applicable_product_tags": ["cloud"]}]
    customer["customer_billing_provider_configurations"].pop()  # the Stripe one the base added


@pytest.fixture
def repos(tmp_path: Path, postgres_url: str):
    """origin: main = the example account (formatted), branch `change` = one more commit."""
    origin = init_repo(tmp_path / "origin")
    shutil.copytree(EXAMPLE_MANIFESTS, origin / "manifests")
    # A second billing configuration no contract bills through, for the change to archive (the
    # AWS one cannot be archived: the contract bills through it).
    _edit(origin / CONTRACT_FILE, lambda docs: next(d for d in docs if d["kind"] == "Customer")["spec"][
        "customer_billing_provider_configurations"].append(
            {"key": "stripe", "billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
             "configuration": {"stripe_customer_id": "cus_123", "stripe_collection_method": "charge_automatically"}}))
    run_cli("fmt", cwd=origin, check=True)
    (origin / ".gitignore").write_text(".billing-reconciler/\n")
    base = commit_all(origin, "billing: the example account")

    # Bootstrap, once, by an admin (README): create the store and apply main.
    env = {"BILLING_RECONCILER_STORE": postgres_url}
    run_cli("init", cwd=origin, env=env, check=True)
    run_cli("apply", "--auto-approve", cwd=origin, env=env, check=True)

    git(origin, "checkout", "-q", "-b", "change")
    _edit(origin / CONTRACT_FILE, _change)
    run_cli("fmt", cwd=origin, check=True)  # what the pre-commit hook asks for
    head = commit_all(origin, "billing: rename the WidgetsExpress contract, 5% cloud discount, no Stripe billing")
    git(origin, "checkout", "-q", "main")
    return {"origin": origin, "base": base, "head": head, "store": postgres_url, "tmp": tmp_path}


def _pr_runner(repos, secrets: dict[str, str], name: str) -> Runner:
    tmp = repos["tmp"]
    return Runner(EXAMPLES / "billing-reconciler-pr.yml", workspace=tmp / name, artifacts=tmp / f"{name}-artifacts",
                  github={"event_name": "pull_request", "base_ref": "main", "head_ref": "change",
                          "sha": repos["head"], "repository": "acme/billing", "token": "test-token",
                          "event": {"pull_request": {"number": "7"}}},
                  secrets=secrets, skip=INSTALL,
                  checkout=lambda ws: shallow_clone(repos["origin"], ws, "change"))


def _main_runner(repos, workflow: str, name: str, sha: str, state: Path | None = None) -> Runner:
    tmp = repos["tmp"]
    return Runner(EXAMPLES / workflow, workspace=tmp / name, artifacts=tmp / f"{name}-artifacts",
                  github={"event_name": "push", "sha": sha, "repository": "acme/billing", "token": "test-token"},
                  secrets={"BILLING_RECONCILER_STORE": repos["store"]}, skip=INSTALL, fake_gh_state=state,
                  checkout=lambda ws: shallow_clone(repos["origin"], ws, "main"))


def _store(repos) -> dict:
    out = run_cli("show", "--format", "json", cwd=repos["tmp"], env={"BILLING_RECONCILER_STORE": repos["store"]},
                  check=True)
    return json.loads(out.stdout)


def test_pull_request_comment_apply_on_merge_and_drift(repos):
    tmp = repos["tmp"]

    # 1. The pull request, with the store secret: the plan against the store is the comment.
    pr = _pr_runner(repos, {"BILLING_RECONCILER_STORE": repos["store"]}, "pr-run")
    result = pr.run_job("plan")
    assert result.ok, result.log()
    assert result.outputs["plan"]["exitcode"] == "2"
    [comment] = result.comments
    assert comment.startswith(MARKER) and len(comment) <= 65_536
    assert "**Plan: 0 to create, 2 to update, 0 to replace, 0 to archive.**" in comment
    assert "> [!WARNING]" in comment and "**Archive** `Customer/widgetsexpress` " \
        "`customer_billing_provider_configurations[stripe]`" in comment
    assert "<summary><code>~ Contract/widgetsexpress-2024</code>" in comment
    assert '"update_contract_name": "WidgetsExpress 2024-25"' in comment and '"add_overrides"' in comment
    assert comment.count("<details>") == comment.count("</details>") == 2
    assert "\x1b[" not in comment  # no terminal: no colour
    assert comment in result.summary
    artifact = tmp / "pr-run-artifacts" / "billing-reconciler-plan"
    plan = json.loads((artifact / "plan.json").read_text())
    assert plan["applyable"] and plan["store"]["serial"] == 1

    # 2. The same pull request from a fork (no secrets): the change itself, against origin/main,
    #    fetched into the shallow clone by the workflow; nothing is kept for apply.
    fork = _pr_runner(repos, {}, "fork-run")
    forked = fork.run_job("plan")
    assert forked.ok, forked.log()
    [fork_comment] = forked.comments
    assert "Compared with git revision `origin/main`" in fork_comment
    assert "**Plan: 0 to create, 2 to update, 0 to replace, 0 to archive.**" in fork_comment
    assert "(known after apply)" in fork_comment
    assert not (tmp / "fork-run-artifacts" / "billing-reconciler-plan" / "plan.json").exists()

    # 3. Merge (a merge commit on main), then the apply workflow on the push: the reviewed plan.
    git(repos["origin"], "merge", "-q", "--no-ff", "-m", "Merge pull request #7", "change")
    merged = git(repos["origin"], "rev-parse", "HEAD")
    state = tmp / "gh-state.json"
    state.write_text(json.dumps({"pulls": {merged: repos["head"]}, "runs": {repos["head"]: "1001"},
                                 "artifacts": {"1001": {"billing-reconciler-plan": str(artifact)}}}))
    apply = _main_runner(repos, "billing-reconciler-apply.yml", "apply-run", merged, state)
    applied = apply.run_job("apply")
    assert applied.ok, applied.log()
    assert "Apply complete: 2 operation(s) applied; store serial is now 2." in \
        applied.step("Apply the reviewed plan").stdout
    after = _store(repos)
    assert after["store"]["serial"] == 2
    addresses = [o["address"] for o in after["objects"]]
    assert len(addresses) == len(set(addresses)) == 22
    contract = next(o for o in after["objects"] if o["address"] == "Contract/widgetsexpress-2024")
    assert contract["spec"]["name"] == "WidgetsExpress 2024-25"

    # A re-run of the same apply (or any plan made before another apply) is refused as stale.
    again = apply.run_job("apply")
    assert again.failed is not None and again.failed.name == "Apply the reviewed plan"
    assert "stale" in again.failed.stderr and "run plan again" in again.failed.stderr
    assert _store(repos)["store"]["serial"] == 2

    # A push that did not come from a pull request has no reviewed plan: nothing is applied.
    state.write_text(json.dumps({"pulls": {}, "runs": {}, "artifacts": {}}))
    direct = apply.run_job("apply")
    assert direct.failed is not None and "did not come from a pull request" in direct.failed.stdout

    # 4. Nightly drift check: none, then an object changed outside the manifests (exit 2).
    drift = _main_runner(repos, "billing-reconciler-drift.yml", "drift-run", merged)
    clean = drift.run_job("drift")
    assert clean.ok, clean.log()
    assert "No drift" in clean.step("Check for drift").stdout and "**No changes.**" in clean.summary

    import psycopg

    dsn = repos["store"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        body = json.loads(conn.execute("SELECT body FROM objects WHERE kind = 'Customer' AND key = 'widgetsexpress'")
                          .fetchone()[0])
        body["name"] = "WidgetsExpress (renamed in the billing app)"
        conn.execute("UPDATE objects SET body = %s WHERE kind = 'Customer' AND key = 'widgetsexpress'",
                     (json.dumps(body, sort_keys=True, separators=(",", ":")),))
    drifted = drift.run_job("drift")
    assert drifted.failed is not None and drifted.failed.returncode == 2
    assert "billing drift" in drifted.failed.stdout
    assert "**Drift** `Customer/widgetsexpress` was changed outside the manifests" in drifted.summary
    assert "set_customer_name" in drifted.summary


def test_pull_request_with_a_refused_change_posts_the_refusal_and_fails(repos):
    origin = repos["origin"]
    git(origin, "checkout", "-q", "change")

    def immutable(docs):
        next(d for d in docs if d["kind"] == "Contract")["spec"].pop("scheduled_charges_on_usage_invoices")

    _edit(origin / CONTRACT_FILE, immutable)
    run_cli("fmt", cwd=origin, check=True)
    repos["head"] = commit_all(origin, "billing: drop scheduled_charges_on_usage_invoices (not allowed)")
    git(origin, "checkout", "-q", "main")

    result = _pr_runner(repos, {"BILLING_RECONCILER_STORE": repos["store"]}, "refused-run").run_job("plan")
    assert result.outputs["plan"]["exitcode"] == "1"
    [comment] = result.comments  # posted before the job fails
    assert "**Plan failed: 1 error(s); nothing can be applied.**" in comment
    assert "**Refused** `Contract/widgetsexpress-2024` `spec.scheduled_charges_on_usage_invoices`" in comment
    assert result.failed is not None and result.failed.name == "Fail if the plan cannot be applied"
    assert not (repos["tmp"] / "refused-run-artifacts" / "billing-reconciler-plan" / "plan.json").exists()


def test_pull_request_with_unformatted_manifests_fails_fmt_check(repos):
    origin = repos["origin"]
    git(origin, "checkout", "-q", "change")
    path = origin / CONTRACT_FILE
    path.write_text(path.read_text().replace("  name: WidgetsExpress 2024-25\n", "  name: 'WidgetsExpress 2024-25'\n"))
    repos["head"] = commit_all(origin, "billing: quotes")
    git(origin, "checkout", "-q", "main")

    result = _pr_runner(repos, {"BILLING_RECONCILER_STORE": repos["store"]}, "fmt-run").run_job("plan")
    assert result.failed is not None and result.failed.name == "Check formatting"
    assert "would reformat manifests/customers/widgetsexpress.yaml" in result.failed.stdout
    assert result.comments == []
