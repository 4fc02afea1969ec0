"""Pull-request comment view: summary, warnings, a table, invoice impact, collapsible diffs.

The comment never exceeds GitHub's 65,536-character limit: the summary, the warnings and the
operations table come first (each cut with a count if it alone would be too long), then one
collapsible block per object, in plan order, while they fit; the objects left out are counted.
A block is always whole: no table, code fence or <details> is ever cut in the middle. Secret
fields are redacted (redaction.py) and every value is escaped, so no value can break the layout.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..operations import Action
from ..plan import Plan
from ...redaction import NO_MARKS, AccountSecrets, Redactor
from .common import NOTES, change_mark, impact_lines, object_action, show_body, show_path, show_value, summary_line

COMMENT_LIMIT = 65_536  # GitHub's limit for a comment body, in characters
MARKER = "<!-- billing-reconciler plan -->"  # lets CI find and update its own comment
CELL_LIMIT = 300  # characters of a value in a table cell; the request body below has it all
OBJECT_LIMIT = 20_000  # characters of one object's block before its operations are cut
SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.ARCHIVE: "-"}


def render(plan: Plan, *, color: bool = False, limit: int = COMMENT_LIMIT, secrets: AccountSecrets = NO_MARKS) -> str:
    by_address = plan.by_address()
    blocks = [_details(address, ops, secrets(address)) for address, ops in by_address.items()]
    footer = _footer(plan)
    # Room for the "N more object diff(s) not shown" line, whatever N turns out to be.
    reserve = len(footer) + len(_not_shown(len(blocks))) + 2
    out = _head(plan, by_address, budget=limit - reserve)
    budget = limit - len(out) - reserve
    shown = 0
    for block in blocks:
        if len(block) + 1 > budget:
            break
        out += block + "\n"
        budget -= len(block) + 1
        shown += 1
    if shown < len(blocks):
        out += _not_shown(len(blocks) - shown)
    out += footer
    if len(out) > limit:  # only with an absurdly small limit: the bare summary
        out = "\n".join([MARKER, "### billing-reconciler plan", "", _summary(plan), "",
                         "_The plan is too large to show here; run `billing-reconciler plan` for it._", ""])
    return out


# --- pieces ------------------------------------------------------------------------------------


def _head(plan: Plan, by_address: dict[str, list], *, budget: int) -> str:
    lines = [MARKER, "### billing-reconciler plan", ""]
    base = plan.extras.get("from_ref")
    if base:
        lines += [f"Compared with git revision {_code(base['ref'])} ({_code(base['commit'][:12])}), not the store: "
                  "the operations merging this change would run. Ids of existing objects are shown as "
                  "_(known after apply)_.", ""]
    target = plan.extras.get("backend")
    if target:
        lines += [f"Target: {target['name']} API at {_code(target['api'])}", ""]
    lines += [_summary(plan), ""]
    head = "\n".join(lines) + "\n"

    # Warnings, the table and the invoice impact share what is left; each section is cut with a
    # count rather than crowding out everything after it.
    sections = [("warnings", _warnings(plan)), ("table", _table(by_address, plan)), ("impact", _impact(plan))]
    room = max(budget - len(head), 0)
    for name, (start, rows, end, what) in sections:
        if not rows:
            head += "\n".join(start + end) + ("\n" if start or end else "")
            continue
        share = room // 2 if name != "impact" else room
        text = _cut_section(start, rows, end, what, share)
        head += text
        room -= len(text)
    return head


def _summary(plan: Plan) -> str:
    if plan.errored:
        text = f"**Plan failed: {len(plan.errors)} error(s); nothing can be applied.**"
    elif not plan.has_changes:
        text = "**No changes.** " + ("The working tree matches that revision." if plan.extras.get("from_ref")
                                      else "The store matches the manifests.")
    else:
        text = f"**{summary_line(plan)}**"
    extra = []
    if plan.operations and plan.errored:
        extra.append(f"{len(plan.by_address())} object(s) with operations")
    if plan.drift:
        extra.append(f"{len(plan.drift)} drifted")
    if plan.unmanaged:
        extra.append(f"{len(plan.unmanaged)} unmanaged")
    return text + (f" ({', '.join(extra)})" if extra else "")


Section = tuple[list[str], list[str], list[str], str]


def _cut_section(start: list[str], rows: list[str], end: list[str], what: str, room: int) -> str:
    """start + as many rows as fit in `room` + a count of the rest + end, as text."""
    fixed = len("\n".join(start + end)) + 2
    kept: list[str] = []
    used = fixed
    for i, row in enumerate(rows):
        rest = len(rows) - i - 1
        needed = len(row) + 1 + (len(_more_row(what, rest, start)) + 1 if rest else 0)
        if used + needed > room:
            break
        kept.append(row)
        used += len(row) + 1
    if len(kept) < len(rows):
        kept.append(_more_row(what, len(rows) - len(kept), start))
    return "\n".join(start + kept + end) + "\n"


def _more_row(what: str, count: int, start: list[str]) -> str:
    text = f"_… and {count} more {what} (the comment would exceed GitHub's size limit)_"
    if start and start[0].startswith("|"):
        columns = start[0].count("|") - 1
        return "| " + " | ".join([text] + [""] * (columns - 1)) + " |"
    if start and start[0].startswith(">"):
        return f"> {text}"
    return text


def _warnings(plan: Plan) -> Section:
    rows = []
    for p in plan.errors:
        where = f"{p.file}:{p.line}"
        rows.append(f"> **Refused** {_code(p.address or p.file)} {_code(p.path) if p.path else ''} "
                    f"{_text(p.message)} ({_code(where)})  ")
    for address, ops in plan.by_address().items():
        names = ", ".join(_code(o.op) for o in ops if o.action in (Action.ARCHIVE, Action.REPLACE))
        if any(o.action == Action.REPLACE for o in ops):
            rows.append(f"> **Replace** {_code(address)} ({names}): archived and created again  ")
        elif any(o.action == Action.ARCHIVE for o in ops):
            reason = next(o.reason for o in ops if o.action == Action.ARCHIVE) or "pruned"
            rows.append(f"> **Archive** {_code(address)} ({names}): {_text(reason)}  ")
    for op in plan.operations:
        for change in op.changes:
            if change.note in ("archive", "remove", "replace"):
                rows.append(f"> **{change.note.title()}** {_code(op.address)} {_code(change.path)} ({_code(op.op)})  ")
    for d in plan.drift:
        fields = ", ".join(_code(c.path) for c in d.changes if c.path)[:CELL_LIMIT]
        rows.append(f"> **Drift** {_code(d.address)} was changed outside the manifests"
                    + (f" ({fields})" if fields else "") + "; the plan restores the manifests' version  ")
    if not rows:
        return [], [], [], ""
    return ["> [!WARNING]"], rows, [""], "warning(s)"


def _table(by_address: dict[str, list], plan: Plan) -> Section:
    if not by_address and not plan.moves and not plan.records:
        return [], [], [], ""
    # Store-only changes first: a rename, a protect flag or ignored paths recorded, no API call.
    rows = [f"| `~` | {_code(m.from_address)} → {_code(m.to_address)} (moved) | no API call: the object keeps its id |"
            for m in plan.moves]
    rows += [f"| `~` | {_code(r.address)} | recorded in the store, no API call: "
             + ", ".join(f"{_code(name)} {_code(show_value(after))}" for name, _, after in r.changes(None)) + " |"
             for r in plan.records if r.changes(None)]
    for address, ops in by_address.items():
        symbol = SYMBOLS[object_action(ops)]
        names = ", ".join(_code(op.op) for op in ops)
        drift = " (drifted)" if any(op.drift for op in ops) else ""
        rows.append(f"| {_code(symbol)} | {_code(address)}{drift} | {names} |")
    return ["| | object | operations |", "|---|---|---|"], rows, [""], "object(s)"


def _impact(plan: Plan) -> Section:
    impact = plan.extras.get("invoice_impact")
    if not impact:
        return [], [], [], ""
    start = ["#### Invoice impact", ""]
    about = []
    if impact.get("usage"):
        about.append(f"usage events {_code(impact['usage'])}")
    if impact.get("events") is not None:
        about.append(f"{impact['events']} event(s)")
    if impact.get("until"):
        about.append(f"rated until {_code(impact['until'])}")
    if about:
        start += ["Invoice totals, subtotals (charges before commits and credits), drawdown and remaining "
                  "balances in dollars, " + ", ".join(about) + ".", ""]
    customers = impact.get("customers") or []
    if not customers:
        return start + ["No customer's invoices or balances change.", ""], [], [], ""
    start += ["| customer | | before | after | delta |", "|---|---|---:|---:|---:|"]
    rows = []
    for r in customers:
        for i, (label, before, after, delta) in enumerate(impact_lines(r)):
            who = _code(r["customer"]) if i == 0 else ""
            rows.append(f"| {who} | {_text(label)} | {_escape(before)} | {_escape(after)} | {_escape(delta)} |")
    return start, rows, [""], "row(s)"


def _details(address: str, ops: list, redactor: Redactor) -> str:
    symbol = SYMBOLS[object_action(ops)]
    summary = f"<details><summary><code>{html.escape(symbol)} {html.escape(address)}</code>"
    summary += " — " + ", ".join(f"<code>{html.escape(op.op)}</code>" for op in ops) + "</summary>"
    parts = [_operation(op, redactor) for op in ops]
    start, end = summary + "\n\n", "</details>\n"
    body = ""
    for i, part in enumerate(parts):
        rest = len(parts) - i - 1
        if len(start) + len(body) + len(part) + len(end) > OBJECT_LIMIT and body:
            body += (f"_… and {rest + 1} more operation(s) of this object not shown (too long for a comment); "
                     "run `billing-reconciler plan` for the full plan._\n\n")
            break
        body += part
    return start + body + end


def _operation(op, redactor: Redactor) -> str:
    lines = [f"{_code(op.op)} — {_code(op.request.method + ' ' + show_path(op.request.path))}"
             + (f" ({_text(op.reason)})" if op.reason else "") + ("  \n**drift**: changed outside the manifests"
                                                                  if op.drift else ""), ""]
    changes = [c for c in op.changes if c.path]
    if changes:
        lines += ["| | field | before | after |", "|---|---|---|---|"]
        for c in changes:
            note = f" _({_text(NOTES[c.note])})_" if c.note in NOTES else ""
            before, after = (("", "") if c.note in NOTES and change_mark(c) == "-"
                             else (_cell(c.before, c.path, redactor), _cell(c.after, c.path, redactor)))
            lines.append(f"| {_code(change_mark(c))} | {_code(c.path)}{note} | {before} | {after} |")
        lines.append("")
    body = show_body(op.request.body, redactor)
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    lines += [f"{fence}json", body, fence, ""]
    return "\n".join(lines) + "\n"


def _footer(plan: Plan) -> str:
    if not plan.unmanaged:
        return ""
    names = ", ".join(_code(a) for a in plan.unmanaged)
    if len(names) > 2_000:
        names = ", ".join(_code(a) for a in plan.unmanaged[:50]) + f" and {len(plan.unmanaged) - 50} more"
    return (f"\nUnmanaged objects left alone (in the store, not in the manifests; `--prune` archives them): "
            f"{names}\n")


def _not_shown(count: int) -> str:
    return (f"\n_{count} more object diff(s) not shown: the comment would exceed GitHub's size limit. "
            "Run `billing-reconciler plan` for the full plan._\n")


# --- escaping ----------------------------------------------------------------------------------




def _code(text: Any) -> str:
    """Inline code that no character can break, inside or outside a table."""
    text = str(text)
    if text and not any(ch in text for ch in "`|\n<>&") and text.strip() == text:
        return f"`{text}`"
    return f"<code>{_escape(text)}</code>"


def _escape(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "&#124;").replace("`", "&#96;").replace("\n", " ")


def _text(text: str) -> str:
    """Plain text with markdown's special characters made literal."""
    return re.sub(r"([\\`*_\[\]|#~])", r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def _cell(value: Any, path: str, redactor: Redactor) -> str:
    text = show_value(value, path, redactor)
    if len(text) > CELL_LIMIT:
        text = text[:CELL_LIMIT] + "…"
    return _code(text)


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(re.escape(char) + "+", text)
    return max((len(r) for r in runs), default=0)
