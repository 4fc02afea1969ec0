"""Pull-request comment view: summary, warnings, a table, collapsible per-object diffs."""

from __future__ import annotations

from ..plan import Plan
from .common import show_body, show_value, summary_line
from .text import _object_action

COMMENT_LIMIT = 65_536  # GitHub's limit for a comment body
MARKER = "<!-- billing-reconciler plan -->"


def render(plan: Plan, *, color: bool = False, limit: int = COMMENT_LIMIT) -> str:
    head: list[str] = [MARKER, "### billing-reconciler plan", ""]
    if plan.errored:
        head.append(f"**Plan failed: {len(plan.errors)} error(s); nothing can be applied.**")
    elif not plan.operations:
        head.append("**No changes.** The store matches the manifests.")
    else:
        head.append(f"**{summary_line(plan)}**")
    head.append("")
    warnings = _warnings(plan)
    if warnings:
        head += ["> [!WARNING]"] + [f"> {w}  " for w in warnings] + [""]
    by_address = plan.by_address()
    if by_address:
        head += ["| | object | operations |", "|---|---|---|"]
        for address, ops in by_address.items():
            symbol = _object_action(ops).symbol
            names = ", ".join(f"`{op.op}`" for op in ops)
            head.append(f"| `{symbol}` | `{address}` | {names} |")
        head.append("")
    impact = plan.extras.get("invoice_impact")
    if impact:
        head += ["#### Invoice impact", "", "| customer | before | after | delta |", "|---|---:|---:|---:|"]
        head += [f"| `{r['customer']}` | {r['before']} | {r['after']} | {r['delta']} |" for r in impact["customers"]]
        head.append("")
    tail = [f"Unmanaged objects left alone: {', '.join(f'`{a}`' for a in plan.unmanaged)}", ""] if plan.unmanaged else []

    out = "\n".join(head)
    budget = limit - len(out) - len("\n".join(tail)) - 200
    details = [_details(address, ops) for address, ops in by_address.items()]
    shown = []
    for block in details:
        if len(block) + 1 > budget:
            break
        shown.append(block)
        budget -= len(block) + 1
    out += "\n".join(shown)
    if len(shown) < len(details):
        out += f"\n\n_{len(details) - len(shown)} more object diff(s) not shown: the comment would exceed GitHub's size limit. Run `billing-reconciler plan` for the full plan._\n"
    return out + ("\n" + "\n".join(tail) if tail else "") + "\n"


def _warnings(plan: Plan) -> list[str]:
    out = [f"**Refused** `{p.address or p.file}` {p.path}: {p.message} ({p.file}:{p.line})" for p in plan.errors]
    for op in plan.operations:
        if op.action.value in ("archive", "replace"):
            out.append(f"**{op.action.value.title()}** `{op.address}` (`{op.op}`)")
        for change in op.changes:
            if change.note in ("archive", "remove", "replace"):
                out.append(f"**{change.note.title()}** `{op.address}` {change.path} (`{op.op}`)")
    out += [f"**Drift** `{d.address}` was changed outside the manifests" for d in plan.drift]
    return out


def _details(address: str, ops) -> str:
    lines = [f"<details><summary><code>{_object_action(ops).symbol} {address}</code></summary>", ""]
    for op in ops:
        lines.append(f"`{op.op}` — `{op.request.method} {op.request.path}` ({op.reason})")
        lines.append("")
        changes = [c for c in op.changes if c.path]
        if changes:
            lines += ["| field | before | after |", "|---|---|---|"]
            lines += [f"| `{c.path}` | `{show_value(c.before)}` | `{show_value(c.after)}` |" for c in changes]
            lines.append("")
        lines += ["```json", show_body(op.request.body), "```", ""]
    lines.append("</details>")
    return "\n".join(lines)
