"""Terminal view, in Terraform's conventions: + create, ~ update, -/+ replace, - archive.

The view is a list of sections, each a function of the plan giving its lines (SECTIONS): a new
thing the plan carries is a new section, not a branch in the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..operations import Action
from ..plan import Plan
from ...redaction import NO_MARKS, AccountSecrets, Redactor
from .common import NOTES, change_mark, impact_lines, object_action, show_body, show_value, summary_line

COLORS = {"+": "\033[32m", "~": "\033[33m", "-/+": "\033[35m", "-": "\033[31m", "!": "\033[31m"}
RESET, BOLD = "\033[0m", "\033[1m"
# Operations whose request body is shown whole: what is created, archived or replaced is read in
# full by the reviewer; an update shows its field changes instead.
BODY_SHOWN = frozenset({Action.CREATE, Action.ARCHIVE, Action.REPLACE})


@dataclass(frozen=True)
class View:
    color: bool
    secrets: AccountSecrets

    def paint(self, symbol: str, text: str) -> str:
        return f"{COLORS[symbol]}{text}{RESET}" if self.color else text


def render(plan: Plan, *, color: bool = False, secrets: AccountSecrets = NO_MARKS) -> str:
    view = View(color, secrets)
    lines: list[str] = []
    for section in SECTIONS:
        part = section(plan, view)
        if part:
            lines += part
    return "\n".join(lines) + "\n"


def _target(plan: Plan, view: View) -> list[str]:
    target = plan.extras.get("backend")
    return [f"Target: {target['name']} API at {target['api']}", ""] if target else []


def _errors(plan: Plan, view: View) -> list[str]:
    return [view.paint("!", f"Error: {problem}") for problem in plan.errors] + ([""] if plan.errors else [])


def _drift(plan: Plan, view: View) -> list[str]:
    lines = [f"! {d.address} changed outside the manifests (drift); the plan restores the manifests' version"
             for d in plan.drift]
    return lines + ([""] if lines else [])


def _moves(plan: Plan, view: View) -> list[str]:
    lines = [view.paint("~", f"{m.from_address} -> {m.to_address} (moved)")
             + "  (store only: no API call; the object keeps its id)" for m in plan.moves]
    for record in plan.records:
        for name, _before, after in record.changes(None):
            lines.append(view.paint("~", f"~ {record.address} {name}: {show_value(after)}")
                         + "  (recorded in the store; no API call)")
    return lines + ([""] if lines else [])


def _objects(plan: Plan, view: View) -> list[str]:
    lines: list[str] = []
    for address, ops in plan.by_address().items():
        action = object_action(ops)
        symbol = action.symbol
        redactor = view.secrets(address)
        lines.append(view.paint(symbol, f"{symbol} {address}") + ("  (drifted)" if any(o.drift for o in ops) else ""))
        for op in ops:
            lines.append(f"    {op.op}  {op.request.method} {op.request.path}")
            for change in op.changes:
                if change.path:
                    lines += _change(change, redactor, view)
            if action == Action.CREATE or op.action in BODY_SHOWN:
                lines.extend("      " + line for line in show_body(op.request.body, redactor).splitlines())
        lines.append("")
    return lines


def _change(change, redactor: Redactor, view: View) -> list[str]:
    """One field change: `~ path: before -> after`; an item added shows its value indented below."""
    mark = change_mark(change)
    note = f"  # {NOTES[change.note]}" if change.note in NOTES else ""
    if change.note in NOTES and mark == "-":
        return ["      " + view.paint(mark, f"{mark} {change.path}{note}")]
    if change.before is None and isinstance(change.after, dict):
        body = show_body(change.after, redactor).splitlines()
        return ["      " + view.paint(mark, f"{mark} {change.path}:{note}")] + ["          " + b for b in body]
    if change.before is None:
        detail = show_value(change.after, change.path, redactor)
    else:
        detail = f"{show_value(change.before, change.path, redactor)} -> " \
                 f"{show_value(change.after, change.path, redactor)}"
    return ["      " + view.paint(mark, f"{mark} {change.path}: {detail}") + note]


def _unmanaged(plan: Plan, view: View) -> list[str]:
    if not plan.unmanaged:
        return []
    return [f"Unmanaged (in the store, not in the manifests; left alone, --prune archives them): "
            f"{', '.join(plan.unmanaged)}", ""]


def _impact(plan: Plan, view: View) -> list[str]:
    impact = plan.extras.get("invoice_impact")
    if not impact:
        return []
    lines = [f"Invoice impact over {impact['events']} usage event(s) from {impact['usage']} "
             f"(invoices up to {impact['until']}):"]
    for row in impact.get("customers", []):
        (_, before, after, delta), *rest = impact_lines(row)
        lines.append(f"  {row['customer']}: total {before} -> {after} ({delta})")
        width = max((len(label) for label, *_ in rest), default=0)
        lines += [f"    {label:<{width}}  {b} -> {a}" for label, b, a, _ in rest]
    if not impact.get("customers"):
        lines.append("  no customer's invoices or balances change")
    return lines + [""]


def _summary(plan: Plan, view: View) -> list[str]:
    if plan.errored:
        return [view.paint("!", f"Plan failed: {len(plan.errors)} error(s); nothing can be applied.")]
    if not plan.has_changes:
        return ["No changes. The store matches the manifests."]
    return [BOLD + summary_line(plan) + RESET if view.color else summary_line(plan)]


SECTIONS: tuple[Callable[[Plan, View], list[str]], ...] = (_target, _errors, _drift, _moves, _objects, _unmanaged,
                                                          _impact, _summary)
