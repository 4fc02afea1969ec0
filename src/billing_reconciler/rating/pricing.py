"""The price in force: the contract's rate card rate, its entitlement, then overrides.

Decisions where the sources are silent:
- A rate card alias resolves as of the contract's starting_at; when several cards carry the alias
  then, the one whose alias assignment started last wins (the "most recently assigned"), ties by key.
- Among rates for a product, a rate with `pricing_group_values` applies only to usage with those
  values; the most specific matching rate wins, then the one that started last (a price change is
  a new rate with a later starting_at).
- Entitlement: the latest-starting active override that sets `entitled` decides; otherwise the
  rate's own `entitled`. Usage on a product that is not entitled is not billed.
- One price override applies (overrides do not stack). Under both prioritizations an OVERWRITE
  wins over every MULTIPLIER and TIERED override, whatever their `priority` numbers (the API's
  `priority` text: "overwrites are prioritized first, and then tiered and multiplier overrides
  are prioritized by their priority value"); among OVERWRITEs the lowest `priority` wins (no
  priority sorts last), then the latest start. Without an OVERWRITE: under LOWEST_MULTIPLIER (the
  default) the lowest multiplier wins; under EXPLICIT (forced when a TIERED override is present)
  the lowest `priority` wins (no priority last; ties: TIERED before MULTIPLIER, then the latest
  start).
- A MULTIPLIER scales every tier of a tiered rate; a TIERED override multiplies the rate's price
  band by band (`size` units per band, last band open).
- An override that names no product, tag or specifier applies to every product. Commit-specific
  overrides (`is_commit_specific`) are not applied: pricing by the paying commit is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import to_decimal
from .timegrid import ts

INF = Decimal("Infinity")


@dataclass(frozen=True)
class Piece:
    """`size` units (None: all remaining units) at `price` cents each."""

    size: Decimal | None
    price: Decimal


@dataclass(frozen=True)
class Price:
    pieces: tuple[Piece, ...]
    override: str | None = None

    @property
    def tiered(self) -> bool:
        return len(self.pieces) > 1


@dataclass(frozen=True)
class Band:
    quantity: Decimal
    unit_price: Decimal
    tier: int | None


def active(item: Mapping[str, Any], t: datetime) -> bool:
    start = ts(item.get("starting_at"))
    end = ts(item.get("ending_before"))
    return (start is None or start <= t) and (end is None or t < end)


# --- rate cards and rates -------------------------------------------------------------------


def resolve_rate_card(rate_cards: Mapping[str, Mapping[str, Any]], contract: Mapping[str, Any]) -> str | None:
    if contract.get("rate_card"):
        return contract["rate_card"] if contract["rate_card"] in rate_cards else None
    alias = contract.get("rate_card_alias")
    if not alias:
        return None
    start = ts(contract["starting_at"])
    candidates = []
    for key, card in rate_cards.items():
        for a in card.get("aliases", []):
            if a["name"] == alias and active(a, start):
                candidates.append((a.get("starting_at") or "", key))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], [-ord(ch) for ch in c[1]]))
    return candidates[-1][1]


def find_rate(card: Mapping[str, Any], product: str, t: datetime, pricing_values: Mapping[str, str | None],
              billing_frequency: str | None = None) -> Mapping[str, Any] | None:
    best = None
    best_key = None
    for rate in card.get("rates", []):
        if rate["product"] != product or not active(rate, t):
            continue
        if billing_frequency is not None and rate.get("billing_frequency") != billing_frequency:
            continue
        pgv = rate.get("pricing_group_values") or {}
        if any(pricing_values.get(k) != v for k, v in pgv.items()):
            continue
        key = (len(pgv), rate["starting_at"])
        if best_key is None or key > best_key:
            best, best_key = rate, key
    return best


def rate_pieces(rate: Mapping[str, Any]) -> tuple[Piece, ...]:
    if rate.get("rate_type") in ("TIERED", "TIERED_PERCENTAGE") and rate.get("tiers"):
        tiers = rate["tiers"]
        return tuple(Piece(to_decimal(t["size"]) if t.get("size") is not None and i < len(tiers) - 1 else None,
                           to_decimal(t["price"])) for i, t in enumerate(tiers))
    return (Piece(None, to_decimal(rate.get("price", 0))),)


# --- overrides ------------------------------------------------------------------------------


def _subset(wanted: Mapping[str, str] | None, have: Mapping[str, str | None]) -> bool:
    return all(have.get(k) == v for k, v in (wanted or {}).items())


def override_matches(override: Mapping[str, Any], product_key: str, product: Mapping[str, Any],
                     pricing_values: Mapping[str, str | None], presentation_values: Mapping[str, str | None],
                     billing_frequency: str | None) -> bool:
    if override.get("is_commit_specific"):
        return False
    tags = set(product.get("tags", []))
    if override.get("product") is not None:
        return override["product"] == product_key
    if override.get("applicable_product_tags"):
        return set(override["applicable_product_tags"]) <= tags
    specifiers = override.get("override_specifiers")
    if not specifiers:
        return True
    for s in specifiers:
        if s.get("commits") or s.get("recurring_commits") or s.get("any_commits_or_credits"):
            continue
        if s.get("product") is not None and s["product"] != product_key:
            continue
        if s.get("product_tags") and not set(s["product_tags"]) <= tags:
            continue
        if not _subset(s.get("pricing_group_values"), pricing_values):
            continue
        if not _subset(s.get("presentation_group_values"), presentation_values):
            continue
        if s.get("billing_frequency") is not None and s["billing_frequency"] != billing_frequency:
            continue
        return True
    return False


def matching_overrides(contract: Mapping[str, Any], product_key: str, product: Mapping[str, Any], t: datetime,
                       pricing_values: Mapping[str, str | None], presentation_values: Mapping[str, str | None],
                       billing_frequency: str | None = None) -> list[Mapping[str, Any]]:
    return [o for o in contract.get("overrides", [])
            if active(o, t) and override_matches(o, product_key, product, pricing_values, presentation_values,
                                                 billing_frequency)]


def entitled(rate: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]]) -> bool:
    setting = [o for o in overrides if o.get("entitled") is not None]
    if setting:
        return bool(max(setting, key=lambda o: (o["starting_at"], o["key"]))["entitled"])
    return bool(rate.get("entitled", False))


def override_type(o: Mapping[str, Any]) -> str | None:
    if o.get("type"):
        return o["type"]
    if o.get("overwrite_rate"):
        return "OVERWRITE"
    if o.get("tiers"):
        return "TIERED"
    if o.get("multiplier") is not None:
        return "MULTIPLIER"
    return None


_TYPE_ORDER = {"OVERWRITE": 0, "TIERED": 1, "MULTIPLIER": 2}


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def winning_override(overrides: Sequence[Mapping[str, Any]], prioritization: str | None) -> Mapping[str, Any] | None:
    priced = [o for o in overrides if override_type(o) in _TYPE_ORDER]
    if not priced:
        return None

    def prio(o: Mapping[str, Any]) -> tuple:
        p = o.get("priority")
        return (p is None, to_decimal(p) if p is not None else INF)

    overwrites = [o for o in priced if override_type(o) == "OVERWRITE"]
    if overwrites:
        return min(overwrites, key=lambda o: (*prio(o), _desc(o["starting_at"]), o["key"]))
    if prioritization == "EXPLICIT" or any(override_type(o) == "TIERED" for o in priced):
        return min(priced, key=lambda o: (*prio(o), _TYPE_ORDER[override_type(o)], _desc(o["starting_at"]), o["key"]))
    multipliers = [o for o in priced if override_type(o) == "MULTIPLIER"]
    if not multipliers:
        return None
    return min(multipliers, key=lambda o: (to_decimal(o["multiplier"]), _desc(o["starting_at"]), o["key"]))


def _merge(base: tuple[Piece, ...], factors: tuple[Piece, ...]) -> tuple[Piece, ...]:
    """Multiply two piecewise-constant functions of the cumulative quantity."""
    def edges(pieces: tuple[Piece, ...]) -> list[Decimal]:
        out, pos = [], Decimal(0)
        for p in pieces:
            if p.size is None:
                break
            pos += p.size
            out.append(pos)
        return out

    def value_at(pieces: tuple[Piece, ...], x: Decimal) -> Decimal:
        pos = Decimal(0)
        for p in pieces:
            if p.size is None or x < pos + p.size:
                return p.price
            pos += p.size
        return pieces[-1].price

    cuts = sorted(set(edges(base)) | set(edges(factors)))
    out, prev = [], Decimal(0)
    for c in cuts:
        out.append(Piece(c - prev, value_at(base, prev) * value_at(factors, prev)))
        prev = c
    out.append(Piece(None, value_at(base, prev) * value_at(factors, prev)))
    return tuple(out)


def apply_override(base: tuple[Piece, ...], override: Mapping[str, Any] | None) -> Price:
    if override is None:
        return Price(base)
    kind = override_type(override)
    if kind == "OVERWRITE":
        return Price(rate_pieces(override["overwrite_rate"]), override["key"])
    if kind == "MULTIPLIER":
        m = to_decimal(override["multiplier"])
        return Price(tuple(Piece(p.size, p.price * m) for p in base), override["key"])
    tiers = override["tiers"]
    factors = tuple(Piece(to_decimal(t["size"]) if t.get("size") is not None and i < len(tiers) - 1 else None,
                          to_decimal(t["multiplier"])) for i, t in enumerate(tiers))
    return Price(_merge(base, factors), override["key"])


def bands(price: Price, used: Decimal, quantity: Decimal) -> list[Band]:
    """Split `quantity` units, coming after `used` units already billed, over the price's tiers."""
    if not price.tiered:
        return [Band(quantity, price.pieces[0].price, None)]
    out: list[Band] = []
    start, remaining, pos = used, quantity, Decimal(0)
    for i, piece in enumerate(price.pieces):
        end = INF if piece.size is None else pos + piece.size
        if remaining > 0 and start < end:
            take = min(remaining, end - start)
            out.append(Band(take, piece.price, i + 1))
            remaining -= take
            start += take
        pos = end
        if remaining <= 0:
            break
    if not out:
        out.append(Band(Decimal(0), price.pieces[0].price, 1))
    return out


@dataclass(frozen=True)
class PriceLookup:
    """Everything that decided a price at one moment (for line items)."""

    rate: Mapping[str, Any]
    price: Price
    entitled: bool


def price_at(state_rate_card: Mapping[str, Any] | None, contract: Mapping[str, Any], product_key: str,
             product: Mapping[str, Any], t: datetime, pricing_values: Mapping[str, str | None],
             presentation_values: Mapping[str, str | None],
             billing_frequency: str | None = None) -> PriceLookup | None:
    if state_rate_card is None:
        return None
    rate = find_rate(state_rate_card, product_key, t, pricing_values, billing_frequency)
    if rate is None:
        return None
    overrides = matching_overrides(contract, product_key, product, t, pricing_values, presentation_values,
                                   billing_frequency if billing_frequency else rate.get("billing_frequency"))
    return PriceLookup(rate, apply_override(rate_pieces(rate), winning_override(
        overrides, contract.get("multiplier_override_prioritization"))), entitled(rate, overrides))


def pricing_cuts(card: Mapping[str, Any] | None, contract: Mapping[str, Any]) -> set[str]:
    """Every moment at which a rate or an override of this contract starts or ends."""
    out: set[str] = set()
    for item in [*(card or {}).get("rates", []), *contract.get("overrides", [])]:
        for f in ("starting_at", "ending_before"):
            if item.get(f):
                out.add(item[f])
    return out
