"""Terminal view, in Terraform's conventions: + create, ~ update, -/+ replace, - archive."""

from __future__ import annotations

from ..operations import Action
from ..plan import Plan
from ...redaction import NO_MARKS, AccountSecrets
from .common import object_action, show_body, show_value, summary_line

COLORS = {"+": "\033[32m", "~": "\033[33m", "-/+": "\033[35m", "-": "\033[31m", "!": "\033[31m"}
RESET, BOLD = "\033[0m", "\033[1m"


def _paint(symbol: str, text: str, color: bool) -> str:
    return f"{COLORS[symbol]}{text}{RESET}" if color else text


def render(plan: Plan, *, color: bool = False, secrets: AccountSecrets = NO_MARKS) -> str:
    lines: list[str] = []
    target = plan.extras.get("backend")
    if target:
        lines.extend([f"Target: {target['name']} API at {target['api']}", ""])
    for problem in plan.errors:
        lines.append(_paint("!", f"Error: {problem}", color))
    if plan.errors:
        lines.append("")
    for drift in plan.drift:
        lines.append(f"! {drift.address} changed outside the manifests (drift); the plan restores the manifests' version")
    if plan.drift:
        lines.append("")
    for move in plan.moves:
        lines.append(_paint("~", f"{move.from_address} -> {move.to_address} (moved)", color)
                     + "  (store only: no API call; the object keeps its id)")
    for record in plan.records:
        for name, before, after in record.changes(None):
            lines.append(_paint("~", f"~ {record.address} {name}: {show_value(after)}", color)
                         + "  (recorded in the store; no API call)")
    if plan.moves or plan.records:
        lines.append("")
    for address, ops in plan.by_address().items():
        action = object_action(ops)
        symbol = action.symbol
        redactor = secrets(address)
        lines.append(_paint(symbol, f"{symbol} {address}", color) + ("  (drifted)" if any(o.drift for o in ops) else ""))
        for op in ops:
            lines.append(f"    {op.op}  {op.request.method} {op.request.path}")
            for change in op.changes:
                mark = {"replace": "-/+", "archive": "-", "remove": "-"}.get(change.note) or (
                    "+" if change.before is None else "-" if change.after is None else "~")
                if change.path == "":
                    continue
                if change.before is None:
                    detail = show_value(change.after, change.path, redactor)
                elif change.after is None:
                    detail = f"{show_value(change.before, change.path, redactor)} -> null"
                else:
                    detail = f"{show_value(change.before, change.path, redactor)} -> {show_value(change.after, change.path, redactor)}"
                lines.append("      " + _paint(mark, f"{mark} {change.path}: {detail}", color))
            if action == Action.CREATE or op.action == Action.CREATE:
                body = show_body(op.request.body, redactor).splitlines()
                lines.extend("      " + line for line in body)
        lines.append("")
    if plan.unmanaged:
        lines.append(f"Unmanaged (in the store, not in the manifests; left alone, --prune archives them): "
                     f"{', '.join(plan.unmanaged)}")
        lines.append("")
    impact = plan.extras.get("invoice_impact")
    if impact:
        lines.append(f"Invoice impact over {impact['events']} usage event(s) from {impact['usage']} "
                     f"(invoices up to {impact['until']}), in cents:")
        for row in impact.get("customers", []):
            lines.append(f"  {row['customer']}: {row['before']} -> {row['after']} ({_signed(row['delta'])})")
        if not impact.get("customers"):
            lines.append("  no customer's invoice totals change")
        lines.append("")
    if plan.errored:
        lines.append(_paint("!", f"Plan failed: {len(plan.errors)} error(s); nothing can be applied.", color))
    elif not plan.has_changes:
        lines.append("No changes. The store matches the manifests.")
    else:
        lines.append(BOLD + summary_line(plan) + RESET if color else summary_line(plan))
    return "\n".join(lines) + "\n"




def _signed(value) -> str:
    return f"+{value}" if value > 0 else str(value)
