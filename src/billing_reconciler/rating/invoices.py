"""Invoice and line-item values, and their JSON shape (DESIGN §7).

Amounts are Decimal cents. A line's `total` is rounded half-up to the cent; unit prices keep their
exact value (a fraction of a cent is a valid price). Drawdown lines (what a commit or credit paid)
are negative, so an invoice's `total` is always the sum of its line totals, and `subtotal` is the
sum of the charge lines before any commit or credit was applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, format_decimal
from ..timeutil import format_timestamp

USAGE = "USAGE"
SCHEDULED = "SCHEDULED"

# Line kinds.
USAGE_CHARGE = "usage"
SUBSCRIPTION_CHARGE = "subscription"
SCHEDULED_CHARGE = "scheduled_charge"
COMMIT_PURCHASE = "commit_purchase"
POSTPAID_TRUEUP = "postpaid_trueup"
PROFESSIONAL_SERVICE = "professional_service"
DRAWDOWN = "drawdown"
# What of a custom credit type's charges no balance in that type paid, billed in the fiat type at
# the rate card's conversion: negative on the custom type's invoice, positive on the fiat one's.
CONVERSION = "conversion"


@dataclass
class LineItem:
    name: str
    product: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    kind: str = USAGE_CHARGE
    group_values: dict[str, str] = field(default_factory=dict)
    override: str | None = None
    commit: str | None = None
    credit: str | None = None
    seat: str | None = None
    tier: int | None = None
    starting_at: datetime | None = None
    ending_before: datetime | None = None
    # For charge lines: the commits/credits that paid (part of) it, key -> amount.
    paid_by: dict[str, Decimal] = field(default_factory=dict)
    # For charge lines: the POSTPAID commits it counts toward, key -> amount. The customer pays the
    # line; the amount only brings the commitment closer to being met (no drawdown line).
    counts_toward: dict[str, Decimal] = field(default_factory=dict)
    # The credit type (pricing unit) the amounts are in, by name; the line's invoice is in it too.
    credit_type: str = USD_CREDIT_TYPE_NAME

    @property
    def is_drawdown(self) -> bool:
        return self.kind == DRAWDOWN or (self.kind == CONVERSION and self.total < 0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "product": self.product, "kind": self.kind,
            "quantity": format_decimal(self.quantity), "unit_price": format_decimal(self.unit_price),
            "total": format_decimal(self.total),
        }
        if self.group_values:
            out["group_values"] = dict(sorted(self.group_values.items()))
        for name in ("override", "commit", "credit", "seat", "tier"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.starting_at is not None:
            out["starting_at"] = format_timestamp(self.starting_at)
        if self.ending_before is not None:
            out["ending_before"] = format_timestamp(self.ending_before)
        if self.paid_by:
            out["paid_by"] = {k: format_decimal(v) for k, v in sorted(self.paid_by.items())}
        if self.counts_toward:
            out["counts_toward"] = {k: format_decimal(v) for k, v in sorted(self.counts_toward.items())}
        return out


@dataclass
class Invoice:
    customer: str
    contract: str
    type: str
    start_timestamp: datetime
    end_timestamp: datetime
    line_items: list[LineItem] = field(default_factory=list)
    # Every amount on the invoice is in this credit type (one invoice per credit type).
    credit_type: str = USD_CREDIT_TYPE_NAME

    @property
    def issued_at(self) -> datetime:
        """A usage invoice is issued when its statement period ends; any other at its date."""
        return self.end_timestamp if self.type == USAGE else self.start_timestamp

    @property
    def subtotal(self) -> Decimal:
        return sum((li.total for li in self.line_items if not li.is_drawdown), Decimal(0))

    @property
    def drawdown(self) -> Decimal:
        """What commits and credits paid of this invoice: the drawdown lines' sum (negative or 0)."""
        return sum((li.total for li in self.line_items if li.is_drawdown), Decimal(0))

    @property
    def total(self) -> Decimal:
        return sum((li.total for li in self.line_items), Decimal(0))

    def sort_key(self) -> tuple:
        return (self.customer, self.contract, self.start_timestamp, self.type != SCHEDULED, self.end_timestamp,
                self.credit_type != USD_CREDIT_TYPE_NAME, self.credit_type)

    def to_json(self) -> dict[str, Any]:
        return {
            "customer": self.customer, "contract": self.contract, "type": self.type,
            "start_timestamp": format_timestamp(self.start_timestamp),
            "end_timestamp": format_timestamp(self.end_timestamp),
            "issued_at": format_timestamp(self.issued_at),
            "credit_type": self.credit_type,
            "line_items": [li.to_json() for li in self.line_items],
            "subtotal": format_decimal(self.subtotal), "total": format_decimal(self.total),
        }


def invoices_json(invoices: list[Invoice]) -> dict[str, Any]:
    return {"invoices": [inv.to_json() for inv in invoices]}


def invoices_total(invoices: list[Invoice]) -> Decimal:
    """What a list of invoices adds up to in dollars (cents): an invoice in a custom credit type is in
    its own units, which never add to dollars."""
    return sum((inv.total for inv in invoices if inv.credit_type == USD_CREDIT_TYPE_NAME), Decimal(0))


def totals_by_customer(invoices: list[Invoice]) -> dict[str, Decimal]:
    """Each customer's invoiced total (what `plan --usage` compares before and after a plan)."""
    out: dict[str, Decimal] = {}
    for inv in invoices:
        out[inv.customer] = out.get(inv.customer, Decimal(0)) + inv.total
    return dict(sorted(out.items()))
