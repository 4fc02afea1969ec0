"""`plan --usage EVENTS`: each affected customer's invoice total before and after the plan."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import EXPORT_DISCOUNT, run_cli
from ..conftest import WIDGETS_EVENTS as EVENTS



def test_plan_usage_shows_invoice_totals_before_and_after(example_tree: Path):
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/s/state.db"}
    assert run_cli("init", cwd=example_tree, env=env).returncode == 0
    assert run_cli("apply", "--auto-approve", cwd=example_tree, env=env).returncode == 0
    (example_tree / "usage.jsonl").write_text(EVENTS)
    contract = example_tree / "manifests" / "customers" / "widgetsexpress.yaml"
    contract.write_text(contract.read_text().replace("  commits:\n", EXPORT_DISCOUNT, 1))

    # November: $10,000 commit invoice + $1,000 platform fee + 10 GB x 9 cents export, which the
    # 0.5 multiplier halves (data export is not a cloud product, so the commit does not cover it):
    # before 1,000,000 + 100,000 + 90 = 1,100,090; after 1,000,000 + 100,000 + 45 = 1,100,045.
    result = run_cli("plan", "--usage", "usage.jsonl", "--format", "json", cwd=example_tree, env=env)
    assert result.returncode == 0, result.stderr
    impact = json.loads(result.stdout)["invoice_impact"]
    # The one API call (1 cent, a cloud product) is paid by the $10,000 prepaid commit in both:
    # subtotal = total + 1, drawdown -1, the commit's balance 1,000,000 - 1 = 999,999.
    assert impact["customers"] == [{"customer": "widgetsexpress", "before": 1100090, "after": 1100045,
                                    "delta": -45,
                                    "subtotal": {"before": 1100091, "after": 1100046},
                                    "drawdown": {"before": -1, "after": -1},
                                    "balances": [{"balance": "widgetsexpress-2024/prepaid-2024",
                                                  "before": 999999, "after": 999999}]}]
    text = run_cli("plan", "--usage", "usage.jsonl", cwd=example_tree, env=env).stdout
    assert "widgetsexpress: total $11,000.90 -> $11,000.45 (-$0.45)" in text
    markdown = run_cli("plan", "--usage", "usage.jsonl", "--format", "markdown", cwd=example_tree, env=env).stdout
    assert "| `widgetsexpress` | total | $11,000.90 | $11,000.45 | -$0.45 |" in markdown


def test_plan_usage_refuses_bad_event_lines(example_tree: Path):
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/s/state.db"}
    (example_tree / "usage.jsonl").write_text(EVENTS + "{not json\n")
    run_cli("init", cwd=example_tree, env=env, check=True)  # plan refuses a store that does not exist
    result = run_cli("plan", "--usage", "usage.jsonl", cwd=example_tree, env=env)
    assert result.returncode == 1 and "line 3" in result.stderr
