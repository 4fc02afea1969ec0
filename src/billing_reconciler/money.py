"""Money and quantities are Decimal, never float.

Amounts follow the billing API: cents of the fiat credit type.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

CENT = Decimal(1)
# Rounding to cents must not fail on a large total: quantize raises InvalidOperation when the
# result has more digits than the context's precision (28 by default). Inputs are bounded
# (bounds.py), but a sum of many bounded values times a bounded price can pass 28 digits.
_WIDE = Context(prec=80)

# The fiat credit type every billing account has: US dollars, amounts in cents. The API types
# some amounts with a credit type (a recurring commit's access_amount, invoice_amount); ours are
# in this one unless a manifest names another.
USD_CREDIT_TYPE_ID = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"
# Its name as the API lists it (GET /v1/credit-types/list): what manifests and invoices call it.
USD_CREDIT_TYPE_NAME = "USD (cents)"


def to_decimal(value: object) -> Decimal:
    """Convert a number as written in YAML/JSON to Decimal without float artefacts."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest string that round-trips, i.e. what the author wrote.
        return Decimal(repr(value))
    return Decimal(str(value))


def is_whole_cents(amount: Decimal) -> bool:
    return amount == amount.to_integral_value()


def round_cents(amount: Decimal) -> Decimal:
    """Round an amount in cents to a whole cent, half up (invoice presentation)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP, context=_WIDE)


def normalize(value: Decimal) -> int | Decimal:
    """Canonical number: an int when integral, else a Decimal without trailing zeros."""
    if value == value.to_integral_value():
        return int(value)
    return value.normalize()


def format_decimal(value: Decimal | int) -> str:
    """Plain (non-scientific) text of a number, as the API and our JSON write it."""
    if isinstance(value, int):
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


_HUNDRED = Decimal(100)


def format_dollars(cents: Decimal | int) -> str:
    """An amount in cents as dollars for people: `$611.60`, `-$0.45`, `$1,100,045.00`; two places
    unless the amount holds a fraction of a cent, which is shown whole (`$0.0025`), never rounded
    (so a unit price keeps its full precision)."""
    dollars = Decimal(cents) / _HUNDRED
    sign = "-" if dollars < 0 else ""
    dollars = abs(dollars)
    if dollars == dollars.quantize(Decimal("0.01"), context=_WIDE):
        return f"{sign}${dollars:,.2f}"
    return f"{sign}${dollars:,f}".rstrip("0")

