"""`apply FILE` re-derives the plan and applies only an identical one; plan files are 0600.

Each tampered copy of a plan file is refused with exit 1 and nothing sent (the store's serial and
history stay as they were); the untouched file then applies.

Mutations caught:
- service.rederive_plan returning the file's plan (or skipping plan_differences): the edited
  amount is applied (test_..._edited_amount...);
- planfile.plan_differences skipping keys missing from the file: the deleted manifests_digest
  passes;
- rederive_plan trusting the file's serial (check_fresh on the file, no re-derivation): the stale
  plan with its serial edited creates every object a second time;
- redaction.Redactor.hidden without the keyed digest: a plan made with one environment value
  applies with another (the rotated-secret case passes unnoticed);
- planfile.write_plan with the default mode (0644 under the usual umask): test_plan_files_are_0600.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

from tests.conftest import run_cli

ENVY = """apiVersion: billing-reconciler/v1
kind: Customer
metadata:
  name: envy
spec:
  name: Envy Inc
  custom_fields:
    sfdc_account_id: {from_env: ENVY_SFDC}
"""


def _serial_and_edits(tree: Path) -> tuple[int, int]:
    with sqlite3.connect(tree / ".billing-reconciler" / "state.db") as db:
        serial = db.execute("SELECT serial FROM state").fetchone()[0]
        return serial, db.execute("SELECT count(*) FROM edits").fetchone()[0]


def _tampered(tree: Path, name: str, edit) -> str:
    doc = json.loads((tree / "plan.json").read_text())
    edit(doc)
    (tree / name).write_text(json.dumps(doc, indent=2))
    return name


def _first_amount(doc) -> None:
    """The first schedule item amount in any request body, multiplied by 100."""
    def walk(node):
        if isinstance(node, dict):
            if "amount" in node and isinstance(node["amount"], (int, float)):
                node["amount"] = node["amount"] * 100
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    assert any(walk(op["request"]["body"]) for op in doc["operations"])


def test_apply_file_refuses_any_plan_but_the_one_it_makes_again(example_tree: Path):
    (example_tree / "manifests" / "customers" / "envy.yaml").write_text(ENVY)
    env = {"ENVY_SFDC": "sfdc-0015e-original"}
    run_cli("init", cwd=example_tree, check=True)
    run_cli("plan", "--out", "plan.json", cwd=example_tree, env=env, check=True)
    cases = {
        _tampered(example_tree, "amount.json", _first_amount):
            "the plan file has ",
        _tampered(example_tree, "no-digest.json", lambda d: d.pop("manifests_digest")):
            "manifests_digest: missing from the plan file",
        _tampered(example_tree, "fewer.json", lambda d: d["operations"].pop()):
            "operations: the plan file has ",
    }
    for name, expected in cases.items():
        result = run_cli("apply", name, cwd=example_tree, env=env)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert f"{name} is not the plan that the manifests in manifests/" in result.stderr
        assert expected in result.stderr and "nothing was applied" in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert _serial_and_edits(example_tree) == (0, 0), name  # nothing sent, nothing recorded
    # The same manifests with another value in the environment: a different plan.
    rotated = run_cli("apply", "plan.json", cwd=example_tree, env={"ENVY_SFDC": "sfdc-0015e-rotated"})
    assert rotated.returncode == 1
    assert "a secret's value is not the one planned" in rotated.stderr
    assert "sfdc-0015e" not in rotated.stdout + rotated.stderr
    assert _serial_and_edits(example_tree) == (0, 0)

    applied = run_cli("apply", "plan.json", cwd=example_tree, env=env, check=True)
    assert "Apply complete" in applied.stdout
    serial, edits = _serial_and_edits(example_tree)
    assert serial == 1 and edits > 0

    # Applied again: refused as stale; with its serial edited to the store's, refused as not the
    # plan made now (which has nothing to do) rather than creating every object a second time.
    stale = run_cli("apply", "plan.json", cwd=example_tree, env=env)
    assert stale.returncode == 1 and "the plan is stale: it was made at store serial 0" in stale.stderr
    name = _tampered(example_tree, "serial.json", lambda d: d["store"].update(serial=1))
    replayed = run_cli("apply", name, cwd=example_tree, env=env)
    assert replayed.returncode == 1 and "is not the plan that the manifests" in replayed.stderr
    assert _serial_and_edits(example_tree) == (1, edits)
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree, env=env).returncode == 0


def test_plan_files_are_0600_even_over_an_existing_file(example_tree: Path):
    run_cli("init", cwd=example_tree, check=True)
    (example_tree / "plan.json").write_text("{}")
    os.chmod(example_tree / "plan.json", 0o644)
    run_cli("plan", "--out", "plan.json", cwd=example_tree, check=True)
    assert stat.S_IMODE((example_tree / "plan.json").stat().st_mode) == 0o600
    assert json.loads((example_tree / "plan.json").read_text())["operations"]
