from __future__ import annotations

from ... import canonical
from ..plan import Plan
from ..planfile import plan_to_json


def render(plan: Plan, *, color: bool = False) -> str:
    return canonical.dumps(plan_to_json(plan), indent=2, sort_keys=False) + "\n"
