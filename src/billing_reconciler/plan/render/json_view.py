"""The JSON view printed on stdout: the plan-file document with secrets hidden.

The plan FILE (`--out`, planfile.write_plan) keeps the real values, since it is what `apply`
sends; what is printed never does (redaction.py).
"""

from __future__ import annotations

from typing import Any

from ... import canonical
from ...redaction import NO_MARKS, AccountSecrets
from ..plan import Plan
from ..planfile import plan_to_json


def render(plan: Plan, *, color: bool = False, secrets: AccountSecrets = NO_MARKS) -> str:
    return canonical.dumps(redacted_plan_json(plan, secrets), indent=2, sort_keys=False) + "\n"


def redacted_plan_json(plan: Plan, secrets: AccountSecrets = NO_MARKS) -> dict[str, Any]:
    """plan_to_json(plan) with every secret in operations and drift shown as "(sensitive)"."""
    doc = plan_to_json(plan)
    doc["operations"] = [_operation(op, secrets) for op in doc["operations"]]
    doc["drift"] = [{**d, "changes": [secrets(d["address"]).change(c) for c in d.get("changes", [])]}
                    for d in doc["drift"]]
    return doc


def _operation(op: dict[str, Any], secrets: AccountSecrets) -> dict[str, Any]:
    redactor = secrets(op["address"])
    changes = op.get("changes", [])
    out = redactor.value({k: v for k, v in op.items() if k != "changes"})
    out["changes"] = [redactor.change(c) for c in changes]
    return {k: out[k] for k in op}  # the plan file's key order
