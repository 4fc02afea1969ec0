"""The JSON view printed on stdout: the plan-file document with secrets hidden.

The plan FILE (`--out`, planfile.write_plan) holds keyed digests of the secrets instead; what is
printed holds "(sensitive)" alone (redaction.py).
"""

from __future__ import annotations

from ... import canonical
from ...redaction import NO_MARKS, AccountSecrets
from ..plan import Plan
from ..planfile import redacted_plan_json  # noqa: F401 - also imported from here


def render(plan: Plan, *, color: bool = False, secrets: AccountSecrets = NO_MARKS) -> str:
    return canonical.dumps(redacted_plan_json(plan, secrets), indent=2, sort_keys=False) + "\n"


