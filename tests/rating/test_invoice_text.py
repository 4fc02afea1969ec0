"""The `invoices` text view of fixed Invoice values: aligned columns, dollars with two places,
unit prices at full precision. One render per test; the snapshot pins the layout."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from billing_reconciler.rating.invoice_text import render_invoices
from billing_reconciler.rating.invoices import DRAWDOWN, Invoice, LineItem

NOV, DEC = datetime(2024, 11, 1, tzinfo=timezone.utc), datetime(2024, 12, 1, tzinfo=timezone.utc)


def test_invoice_text(snapshot):
    # 4,892.8 GB at 12.5 cents = 61,160 cents ($611.60); 3,000,000 calls at 0.0125 cents ($0.000125
    # each) = 37,500 cents ($375.00), paid by the commit: drawdown -37,500. Subtotal 61,160 + 37,500
    # = 98,660 ($986.60); total 98,660 - 37,500 = 61,160 ($611.60).
    invoice = Invoice("acme", "acme-2024", "USAGE", NOV, DEC, [
        LineItem("Data export", "data-export", Decimal("4892.8"), Decimal("12.5"), Decimal(61160),
                 group_values={"region": "US"}),
        LineItem("API calls", "api-calls", Decimal(3000000), Decimal("0.0125"), Decimal(37500),
                 paid_by={"prepaid": Decimal(37500)}),
        LineItem("Prepaid commit", "prepaid-commit", Decimal(1), Decimal(-37500), Decimal(-37500), kind=DRAWDOWN,
                 commit="prepaid"),
    ])
    out = render_invoices([invoice], ["stranger-1"], Decimal(61160))
    assert out == snapshot
    lines = out.splitlines()
    # Mutations caught: `$611.6` (one place), a rounded unit price ($0.00), columns not aligned.
    row = next(line for line in lines if line.startswith("Data export"))
    assert row.split()[-3:] == ["4892.8", "$0.125", "$611.60"]
    assert "$0.000125" in next(line for line in lines if line.startswith("API calls"))
    amounts = [line.index("$611.60") + len("$611.60") for line in lines if line.startswith(("Data export", "total"))]
    assert len(amounts) == 2 and amounts[0] == amounts[1]  # right-aligned in one column
    assert next(line for line in lines if line.startswith("subtotal")).endswith("$986.60")
    assert lines[-1] == "Usage from 1 unknown customer id(s) kept unbilled: stranger-1"
