"""Credit types (pricing units) on invoices: one invoice per credit type, and the conversion of
what a custom credit type's balances did not pay into the rate card's fiat credit type.

Decisions (sources: the API's `credit_type_conversions` on rate cards; Metronome's pricing-units
page: usage priced in a custom unit "burns down credits and prepaid commits with access schedules
in that custom pricing unit. If there are no applicable credits or prepaid commits ... a conversion
line item is added to calculate the cost in the specified fiat currency set on the rate card"):
- Every amount is in one credit type, named as the API lists it ("USD (cents)" by default). A
  rate's usage is in the rate's credit type; a balance pays only charges in its own type
  (balances.py); a commit's purchase is in its invoice schedule's type.
- Each invoice (a statement period's usage invoice, a dated charge's own invoice) is split into
  one invoice per credit type on it, each with `credit_type`; the fiat one keeps the place (and
  `issued_at`) of the original, the others follow it.
- What is left due on a custom credit type's invoice (its charges less what its balances paid) is
  converted at the card's `fiat_per_custom_credit`: a `conversion` line takes it off that invoice
  (its total becomes 0: nothing is owed in units) and a `conversion` line on the fiat invoice of
  the same period bills `units × fiat_per_custom_credit`, rounded half up to the cent. With no
  conversion on the card (validate requires one for every custom type its rates use) the units
  stay due on the custom invoice.
- An OVERWRITE override's `overwrite_rate.credit_type` replaces the rate's. A composite
  (PERCENTAGE) line is in the credit type of the spend it is a share of (composite.py).
  Subscription charges are in the fiat type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, round_cents, to_decimal
from .invoices import CONVERSION, USAGE, Invoice, LineItem


def rate_credit_type(rate: Mapping[str, Any]) -> str:
    return rate.get("credit_type") or USD_CREDIT_TYPE_NAME


def price_credit_type(found, contract: Mapping[str, Any]) -> str:
    """The credit type of a price found (pricing.PriceLookup): an OVERWRITE override's rate's
    when it names one, else the rate card rate's."""
    if found.price.override is not None:
        for o in contract.get("overrides", []):
            if o["key"] == found.price.override and (o.get("overwrite_rate") or {}).get("credit_type"):
                return o["overwrite_rate"]["credit_type"]
    return rate_credit_type(found.rate)


def fiat_credit_type(card: Mapping[str, Any] | None) -> str:
    return (card or {}).get("fiat_credit_type") or USD_CREDIT_TYPE_NAME


def conversions(card: Mapping[str, Any] | None) -> dict[str, Decimal]:
    """custom credit type -> fiat per one unit of it, from the rate card."""
    return {c["custom_credit_type"]: to_decimal(c["fiat_per_custom_credit"])
            for c in (card or {}).get("credit_type_conversions", [])}


def one_per_credit_type(invoices: list[Invoice], card: Mapping[str, Any] | None) -> list[Invoice]:
    fiat, rates = fiat_credit_type(card), conversions(card)
    out: list[Invoice] = []
    for invoice in invoices:
        types = sorted({li.credit_type for li in invoice.line_items} - {fiat})
        if not types:
            out.append(replace(invoice, credit_type=fiat) if invoice.credit_type != fiat else invoice)
            continue
        main = replace(invoice, line_items=[li for li in invoice.line_items if li.credit_type == fiat],
                       credit_type=fiat)
        others = []
        for credit_type in types:
            custom = replace(invoice, line_items=[li for li in invoice.line_items if li.credit_type == credit_type],
                             credit_type=credit_type)
            due = custom.total
            rate = rates.get(credit_type)
            if due > 0 and rate is not None:
                label = f"{credit_type} converted to {fiat}"
                custom.line_items.append(LineItem(f"Converted to {fiat}", "", due, Decimal(-1), -due, kind=CONVERSION,
                                                  credit_type=credit_type))
                main.line_items.append(LineItem(label, "", due, rate, round_cents(due * rate), kind=CONVERSION,
                                                credit_type=fiat))
            others.append(custom)
        # A dated charge's invoice in the fiat type only exists when something is on it.
        out += [main, *others] if main.line_items or invoice.type == USAGE else others
    return out
