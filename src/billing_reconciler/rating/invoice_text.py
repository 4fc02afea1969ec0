"""The text view of invoices (`invoices`): one aligned table per invoice (rich), amounts in dollars
with two places (`$611.60`), unit prices at their full precision (`$0.000125`).

Rendering only lays out what the Invoice values hold (their subtotal and total are properties
of the invoice); it computes nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from rich import box
from rich.console import Console
from rich.table import Table

from ..money import USD_CREDIT_TYPE_NAME, format_decimal, format_dollars
from ..timeutil import format_timestamp
from .invoices import Invoice, LineItem

WIDTH = 160  # wide enough for a line's label, figures and notes without wrapping on a pipe


def render_invoices(invoices: list[Invoice], unattributed: Iterable[str] = (), grand_total=None,
                    *, width: int = WIDTH) -> str:
    """`grand_total`: the invoices' total as the caller summed it (cents)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False,
                      markup=False, force_terminal=False, soft_wrap=False)
    for inv in invoices:
        console.print(_title(inv))
        console.print(_table(inv))
        console.print("")
    unattributed = list(unattributed)
    summary = f"{len(invoices)} invoice(s)"
    if grand_total is not None:
        summary += f", total {format_dollars(grand_total)}"
    console.print(summary + ".")
    if unattributed:
        console.print(f"Usage from {len(unattributed)} unknown customer id(s) kept unbilled: "
                      + ", ".join(unattributed[:10]) + (" ..." if len(unattributed) > 10 else ""))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def _title(inv: Invoice) -> str:
    period = (format_timestamp(inv.start_timestamp) if inv.start_timestamp == inv.end_timestamp
              else f"{format_timestamp(inv.start_timestamp)} .. {format_timestamp(inv.end_timestamp)}")
    return (f"{inv.customer} / {inv.contract}  {inv.type}  {period}  issued {format_timestamp(inv.issued_at)}"
            + ("" if inv.credit_type == USD_CREDIT_TYPE_NAME else f"  in {inv.credit_type}"))


def _amounts(credit_type: str):
    """How an invoice's amounts read: USD cents as dollars; any other credit type in its own units
    ("120 seat credits"), unit prices as bare numbers."""
    if credit_type == USD_CREDIT_TYPE_NAME:
        return format_dollars, format_dollars
    return (lambda amount: f"{format_decimal(amount)} {credit_type}"), format_decimal


# The table's columns: (header, justify); each line item fills them through _cells.
COLUMNS = (("line item", "left"), ("quantity", "right"), ("unit price", "right"), ("amount", "right"),
           ("notes", "left"))


def _table(inv: Invoice) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 2))
    for header, justify in COLUMNS:
        table.add_column(header, justify=justify, no_wrap=header != "notes", overflow="fold")
    amount, _ = _amounts(inv.credit_type)
    for li in inv.line_items:
        table.add_row(*_cells(li, inv.credit_type))
    table.add_section()
    table.add_row("subtotal", "", "", amount(inv.subtotal), "")
    table.add_row("total", "", "", amount(inv.total), "")
    return table


def _cells(li: LineItem, credit_type: str) -> tuple[str, str, str, str, str]:
    amount, unit_price = _amounts(credit_type)
    label = li.name
    extras = [f"{k}={v}" for k, v in sorted(li.group_values.items())]
    if li.tier is not None:
        extras.append(f"tier {li.tier}")
    if li.seat:
        extras.append(f"seat {li.seat}")
    if extras:
        label += f" ({', '.join(extras)})"
    notes = [f"override {li.override}"] if li.override else []
    notes += [f"paid by {k}" for k in sorted(li.paid_by)]
    notes += [f"counts toward {k}" for k in sorted(li.counts_toward)]
    return (label, format_decimal(li.quantity), unit_price(li.unit_price), amount(li.total),
            "; ".join(notes))
