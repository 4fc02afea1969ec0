"""Professional services: a contract's `professional_services` terms are invoiced when a
professional-services invoice is scheduled for them (`contracts.schedule_pro_services_invoice`,
POST /v1/contracts/scheduleProServicesInvoice), never on their own.

The API: a term has `unit_price` ("multiplied by quantity to determine the amount"), `quantity`
and `max_amount` ("Maximum amount for the term"). A scheduled invoice has `issued_at` ("The date
the invoice is issued") and `line_items`, each naming a term, with "an amount or both unit_price
and quantity"; a line's `unit_price` "overrides the unit price on the pro service term".

Input: per contract, the scheduled invoices as the request bodies with keys for ids:
`{"issued_at": T, "line_items": [{"professional_service": KEY, "amount"? , "unit_price"?,
"quantity"?}]}` (BillingState.pro_service_invoices).

Decisions where the sources are silent:
- A line with only `quantity` uses the term's unit price; a line with neither amount nor quantity
  bills the whole term (its unit_price × quantity).
- `max_amount` caps what a term is billed over all its invoices, in issue order: a line is cut to
  what is left under the cap, and a line with nothing left is dropped.
- Each scheduled invoice is an invoice of its own (type SCHEDULED) issued at `issued_at`, even
  when other charges fall on that date; one issued at or after the horizon is not yet issued.
  A line naming no term of the contract is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..money import round_cents, to_decimal
from .invoices import PROFESSIONAL_SERVICE, LineItem
from .schedule import OWN_INVOICE, DatedCharge
from .timegrid import ts


def _requested(term: Mapping[str, Any], item: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    """(quantity, unit_price, amount) a line asks for."""
    if item.get("amount") is not None:
        amount = to_decimal(item["amount"])
        return Decimal(1), amount, amount
    unit = to_decimal(item["unit_price"] if item.get("unit_price") is not None else term["unit_price"])
    qty = to_decimal(item["quantity"] if item.get("quantity") is not None else term["quantity"])
    return qty, unit, round_cents(qty * unit)


def pro_service_charges(contract: Mapping[str, Any], scheduled: Sequence[Mapping[str, Any]],
                        products: Mapping[str, Mapping[str, Any]]) -> list[DatedCharge]:
    terms = {t["key"]: t for t in contract.get("professional_services") or []}
    billed: dict[str, Decimal] = {}
    out: list[DatedCharge] = []
    for n, invoice in sorted(enumerate(scheduled), key=lambda e: (ts(e[1]["issued_at"]), e[0])):
        at = ts(invoice["issued_at"])
        for item in invoice.get("line_items", []):
            term = terms.get(item.get("professional_service"))
            if term is None:
                continue
            qty, unit, amount = _requested(term, item)
            left = to_decimal(term["max_amount"]) - billed.get(term["key"], Decimal(0))
            if left <= 0:
                continue
            if amount > left:
                qty, unit, amount = Decimal(1), left, left
            billed[term["key"]] = billed.get(term["key"], Decimal(0)) + amount
            name = term.get("description") or products.get(term["product"], {}).get("name", term["product"])
            out.append(DatedCharge(at, LineItem(name, term["product"], qty, unit, amount, kind=PROFESSIONAL_SERVICE),
                                   OWN_INVOICE, invoice=f"pro-services-{n}"))
    return out
