"""COMPOSITE products: a PERCENTAGE (or TIERED_PERCENTAGE) rate applied to the spend of other
products on the same contract and statement period (reference §1.3 and §5.3 step 4).

Decisions where the sources are silent:
- Components: the products in `composite_products` plus every product carrying any of
  `composite_tags`, never the composite itself; other COMPOSITE products only with
  `include_composite_spend` (their charges are computed first, so one level of nesting).
- Spend: the component products' usage charges on the invoice as charged, i.e. list price after
  overrides and before any commit or credit pays them. Subscription, scheduled and commit
  charges are not usage spend.
- The composite's own rate (and overrides: a MULTIPLIER scales the percentage, an OVERWRITE
  replaces it) is the one in force at the start of each slice of the period; tiers of a
  TIERED_PERCENTAGE rate are bands of spend in cents that run over the whole statement period, as
  usage tiers do. A line's quantity is the spend (cents), its unit price the fraction.
- A composite line is a usage charge (the API's line-item type `usage` covers "a usage product or
  composite product"), so commits and credits that apply to the composite can pay it.
- Credit types: a PERCENTAGE rate "takes the credit type of the rates it applies to" (reference
  §1.4), so spend is summed per credit type and each credit type's spend gets its own line in it.
- `exclude_free_usage` changes no amount ($0 lines add nothing to the spend) and is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import round_cents
from .invoices import USAGE_CHARGE, LineItem
from .pricing import bands, price_at

COMPOSITE = "COMPOSITE"


def composite_order(products: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Composite product keys, those that read other composites' spend last."""
    keys = [k for k in sorted(products) if products[k].get("type") == COMPOSITE]
    return sorted(keys, key=lambda k: bool(products[k].get("include_composite_spend")))


def components(key: str, products: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    composite = products[key]
    listed = set(composite.get("composite_products") or [])
    tags = set(composite.get("composite_tags") or [])
    nested = bool(composite.get("include_composite_spend"))
    return frozenset(k for k, p in products.items()
                     if k != key and (k in listed or tags & set(p.get("tags") or []))
                     and (nested or p.get("type") != COMPOSITE))


def composite_lines(card: Mapping[str, Any] | None, contract: Mapping[str, Any],
                    products: Mapping[str, Mapping[str, Any]], composites: list[str],
                    period_lines: list[LineItem]) -> list[LineItem]:
    """The charges of `composites` (composite_order) in one statement period, from its usage lines."""
    out: list[LineItem] = []
    for key in composites:
        product = products[key]
        wanted = components(key, products)
        spend: dict[tuple[datetime, datetime, str], Decimal] = {}
        for line in [*period_lines, *out]:
            if line.kind == USAGE_CHARGE and line.product in wanted and line.starting_at is not None:
                slice_ = (line.starting_at, line.ending_before, line.credit_type)
                spend[slice_] = spend.get(slice_, Decimal(0)) + line.total
        used: dict[str, Decimal] = {}
        for (a, b, credit_type), base in sorted(spend.items()):
            if base <= 0:
                continue
            found = price_at(card, contract, key, product, a, {}, {})
            if found is None or not found.entitled:
                continue
            for band in bands(found.price, used.get(credit_type, Decimal(0)), base):
                out.append(LineItem(product.get("name", key), key, band.quantity, band.unit_price,
                                    round_cents(band.quantity * band.unit_price), kind=USAGE_CHARGE,
                                    override=found.price.override, tier=band.tier, starting_at=a, ending_before=b,
                                    credit_type=credit_type))
            used[credit_type] = used.get(credit_type, Decimal(0)) + base
    return out
