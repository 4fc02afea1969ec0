"""Subscriptions: quantity and seat timelines, subscription charges, and seat-linked recurring
commits and credits (their balance segments and invoices).

Decisions where the sources are silent:
- Service periods follow `subscription_rate.billing_frequency`, anchored on
  billing_cycle_config.anchor_date, else on the subscription's start.
- Proration is by exact elapsed time over the full (nominal) service period.
- ADVANCE: each period is charged at its start for the quantity then, on the invoice issued at
  that moment (schedule.assemble: the usage invoice issued that day, else an invoice of its own);
  a mid-period increase is charged for the added units × the remaining share of the period (the
  full price when not prorated): BILL_IMMEDIATELY on an invoice of its own at the change date,
  BILL_ON_NEXT_COLLECTION_DATE (the default) at the next collection date, the end of the period,
  i.e. on the invoice that carries the next period's advance charge. Decreases take effect
  without a refund.
- ARREARS: each period is charged at its end, on the invoice issued then; prorated: Σ quantity ×
  share of the period it was held; not prorated: the highest quantity held in the period.
- Periods are charged up to `limit` (the end of the contract's last statement period): a charge
  dated there lands on that usage invoice; one dated after `until` on no invoice is not issued yet.
- A stub first or last period is charged pro rata when `is_prorated`, in full otherwise.
- SEAT_BASED: quantity = assigned seats + unassigned seats; adding a seat id fills an unassigned
  seat first. Seat-linked credits are granted for assigned seats only.
- Recurring commits/credits: one balance per period of `recurrence_frequency` (anchored on their
  starting_at) or, when omitted, of the usage statement schedule. `access_amount` is per seat
  when linked to a subscription (per assigned seat for SEAT_BASED, per unit for QUANTITY_ONLY);
  POOLED puts it in one balance, INDIVIDUAL gives each seat its own. A seat added mid-period adds
  its share (pro rata when apply_seat_increase_config.is_prorated). Partial first/last periods are
  prorated per `proration` (default FIRST_AND_LAST), amounts rounded half-up to the cent unless
  proration_rounding says otherwise. A recurring commit's `invoice_amount` is billed at each
  period's start (per seat when linked, prorated like the access amount).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, round_cents, to_decimal
from . import timegrid
from .balances import COMMIT, CREDIT, Scope, Segment
from .invoices import COMMIT_PURCHASE, SUBSCRIPTION_CHARGE, LineItem
from .pricing import price_at
from .schedule import ON_SCHEDULE, ON_USAGE_INVOICE, OWN_INVOICE, DatedCharge, statement_anchor
from .timegrid import ts

_ROUNDING = {"HALF_UP": ROUND_HALF_UP, "FLOOR": ROUND_FLOOR, "CEILING": ROUND_CEILING}


def apply_rounding(amount: Decimal, rounding: Mapping[str, Any] | None) -> Decimal:
    if not rounding:
        return round_cents(amount)
    exp = Decimal(1).scaleb(-int(rounding["decimal_places"]))
    return amount.quantize(exp, rounding=_ROUNDING[rounding["rounding_method"]]) if exp <= 1 else \
        (amount / exp).quantize(Decimal(1), rounding=_ROUNDING[rounding["rounding_method"]]) * exp


@dataclass(frozen=True)
class Holding:
    """The subscription's state from `at` until the next change."""

    at: datetime
    quantity: Decimal
    seats: tuple[str, ...]  # assigned seat ids (SEAT_BASED), in assignment order


def subscription_bounds(contract: Mapping[str, Any], sub: Mapping[str, Any]) -> tuple[datetime, datetime | None]:
    start = ts(sub.get("starting_at") or contract["starting_at"])
    end = ts(sub.get("ending_before") or contract.get("ending_before"))
    return start, end


def timeline(contract: Mapping[str, Any], sub: Mapping[str, Any]) -> list[Holding]:
    start, _ = subscription_bounds(contract, sub)
    if sub.get("quantity_management_mode") == "SEAT_BASED":
        cfg = sub.get("seat_config") or {}
        seats = list(dict.fromkeys(cfg.get("initial_seat_ids", [])))
        unassigned = to_decimal(cfg.get("initial_unassigned_seats", 0))
        out = [Holding(start, len(seats) + unassigned, tuple(seats))]
        updates = sub.get("seat_updates") or {}
        changes = []
        for order, name in enumerate(("add_seat_ids", "remove_seat_ids", "add_unassigned_seats",
                                      "remove_unassigned_seats")):
            for i, ch in enumerate(updates.get(name, [])):
                changes.append((ts(ch["starting_at"]), order, i, name, ch))
        for at, _, _, name, ch in sorted(changes, key=lambda c: c[:3]):
            if name == "add_seat_ids":
                for seat in ch["seat_ids"]:
                    if seat not in seats:
                        seats.append(seat)
                        unassigned = max(Decimal(0), unassigned - 1)
            elif name == "remove_seat_ids":
                seats = [s for s in seats if s not in set(ch["seat_ids"])]
            elif name == "add_unassigned_seats":
                unassigned += to_decimal(ch["quantity"])
            else:
                unassigned = max(Decimal(0), unassigned - to_decimal(ch["quantity"]))
            out.append(Holding(max(at, start), len(seats) + unassigned, tuple(seats)))
        return _collapse(out)
    quantity = to_decimal(sub.get("initial_quantity", 0))
    out = [Holding(start, quantity, ())]
    updates = sorted(enumerate(sub.get("quantity_updates", [])), key=lambda u: (u[1]["starting_at"], u[0]))
    for _, u in updates:
        if u.get("quantity") is not None:
            quantity = to_decimal(u["quantity"])
        else:
            quantity = max(Decimal(0), quantity + to_decimal(u.get("quantity_delta", 0)))
        out.append(Holding(max(ts(u["starting_at"]), start), quantity, ()))
    return _collapse(out)


def _collapse(holdings: list[Holding]) -> list[Holding]:
    """Several changes at one moment: the last state wins."""
    out: list[Holding] = []
    for h in holdings:
        if out and out[-1].at == h.at:
            out[-1] = h
        else:
            out.append(h)
    return out


def holding_at(holdings: list[Holding], t: datetime) -> Holding:
    current = holdings[0]
    for h in holdings:
        if h.at <= t:
            current = h
    return current


def find_subscription(contract: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    for sub in contract.get("subscriptions", []):
        if sub.get("temporary_id") == ref or sub["key"] == ref:
            return sub
    return None


def _horizon(end: datetime | None, until: datetime, anchor: datetime, frequency: str) -> datetime:
    k = timegrid.boundary_index_at_or_before(anchor, frequency, until)
    horizon = timegrid.step(anchor, frequency, k + 1)
    return min(horizon, end) if end is not None else horizon


def subscription_charges(contract: Mapping[str, Any], sub: Mapping[str, Any], card: Mapping[str, Any] | None,
                         products: Mapping[str, Mapping[str, Any]], limit: datetime) -> list[DatedCharge]:
    rate_ref = sub["subscription_rate"]
    product_key, frequency = rate_ref["product"], rate_ref["billing_frequency"]
    product = products.get(product_key, {})
    start, end = subscription_bounds(contract, sub)
    anchor = ts((sub.get("billing_cycle_config") or {}).get("anchor_date")) or start
    placement_on_usage = (sub.get("billing_cycle_config") or {}).get("invoice_placement") != "ON_SCHEDULED_INVOICE"
    proration = sub.get("proration") or {}
    prorated = bool(proration.get("is_prorated"))
    immediately = proration.get("invoice_behavior") == "BILL_IMMEDIATELY"
    rounding = proration.get("rounding")
    advance = sub["collection_schedule"] == "ADVANCE"
    name = sub.get("name") or product.get("name", product_key)
    holdings = timeline(contract, sub)
    out: list[DatedCharge] = []

    def charge(at: datetime, qty: Decimal, unit: Decimal, share: Decimal, ps: datetime, pe: datetime,
               override: str | None, placement: str) -> None:
        total = apply_rounding(qty * unit * share, rounding)
        if not placement_on_usage:
            placement = OWN_INVOICE
        line = LineItem(name, product_key, qty, (unit * share).quantize(Decimal("1e-10")).normalize(), total,
                        kind=SUBSCRIPTION_CHARGE, override=override, starting_at=ps, ending_before=pe)
        out.append(DatedCharge(at, line, placement))

    for ps, pe in timegrid.periods(anchor, frequency, start, _horizon(end, limit, anchor, frequency)):
        if ps > limit:
            break
        found = price_at(card, contract, product_key, product, ps, {}, {}, frequency)
        if found is None or not found.entitled:
            continue
        unit, override = found.price.pieces[0].price, found.price.override
        nominal = timegrid.nominal_period(anchor, frequency, ps)
        stub = timegrid.fraction(ps, pe, *nominal) if prorated else Decimal(1)
        if advance:
            h = holding_at(holdings, ps)
            if h.quantity > 0:
                charge(ps, h.quantity, unit, stub, ps, pe, override, ON_USAGE_INVOICE)
            previous = h.quantity
            for change in (x for x in holdings if ps < x.at < pe):
                delta = change.quantity - previous
                previous = change.quantity
                if delta <= 0:
                    continue
                share = timegrid.fraction(change.at, pe, *nominal) if prorated else Decimal(1)
                if immediately:
                    charge(change.at, delta, unit, share, change.at, pe, override, OWN_INVOICE)
                else:
                    charge(pe, delta, unit, share, change.at, pe, override, ON_USAGE_INVOICE)
        else:
            points = [ps, *(x.at for x in holdings if ps < x.at < pe), pe]
            if prorated:
                for a, b in zip(points, points[1:]):
                    h = holding_at(holdings, a)
                    if h.quantity > 0:
                        charge(pe, h.quantity, unit, timegrid.fraction(a, b, *nominal), a, b, override,
                               ON_USAGE_INVOICE)
            else:
                top = max(holding_at(holdings, a).quantity for a in points[:-1])
                if top > 0:
                    charge(pe, top, unit, Decimal(1), ps, pe, override, ON_USAGE_INVOICE)
    return out


def recurring_balances(contract: Mapping[str, Any], item: Mapping[str, Any], kind: str,
                       products: Mapping[str, Mapping[str, Any]],
                       limit: datetime) -> tuple[list[Segment], list[DatedCharge]]:
    """The balance segments (and, for commits, the invoices) a recurring commit/credit generates,
    for the periods starting up to `limit` (the end of the contract's last statement period)."""
    start = ts(item["starting_at"])
    contract_end = ts(contract.get("ending_before"))
    stop = min((e for e in (ts(item.get("ending_before")), contract_end) if e is not None), default=None)
    if item.get("recurrence_frequency"):
        anchor, frequency = start, item["recurrence_frequency"]
    else:
        anchor, frequency = statement_anchor(contract)
    gens = [p for p in timegrid.periods(anchor, frequency, start, _horizon(stop, limit, anchor, frequency))
            if p[0] <= limit]
    name = item.get("name") or products.get(item["product"], {}).get("name", item["product"])
    priority = to_decimal(item["priority"]) if item.get("priority") is not None else None
    unit = to_decimal(item["access_amount"]["unit_price"])
    access_credit_type = item["access_amount"].get("credit_type") or USD_CREDIT_TYPE_NAME
    invoice = item.get("invoice_amount")
    proration = item.get("proration", "FIRST_AND_LAST")
    rounding = item.get("proration_rounding") or {}
    duration = int(to_decimal(item["commit_duration"]["value"]))
    rollover = to_decimal(item["rollover_fraction"]) if item.get("rollover_fraction") is not None else None
    scope = Scope.of(item)
    config = item.get("subscription_config")
    sub = find_subscription(contract, config["subscription_id"]) if config else None
    individual = bool(config and config.get("allocation") == "INDIVIDUAL")
    seat_key = ((sub or {}).get("seat_config") or {}).get("seat_group_key") if individual else None
    seat_increase_prorated = bool(config and config["apply_seat_increase_config"]["is_prorated"])
    holdings = timeline(contract, sub) if sub else None
    seat_based = bool(sub and sub.get("quantity_management_mode") == "SEAT_BASED")

    def units(h: Any) -> Decimal:
        if h is None:
            return to_decimal(item["access_amount"].get("quantity", 1))
        return Decimal(len(h.seats)) if seat_based else h.quantity

    segments: list[Segment] = []
    charges: list[DatedCharge] = []

    def grant(g: int, a: datetime, access_end: datetime, share: Decimal, seat: str | None, count: Decimal) -> None:
        amount = apply_rounding(unit * count * share, rounding.get("access"))
        if amount > 0:
            segments.append(Segment(item["key"], kind, name, item["product"], priority, a, access_end, amount, scope,
                                    seat=seat, seat_key=seat_key, chain=(item["key"], seat), generation=g,
                                    rollover_fraction=rollover, credit_type=access_credit_type))
        if invoice and kind == COMMIT:
            q = to_decimal(invoice["quantity"]) * count
            total = apply_rounding(to_decimal(invoice["unit_price"]) * q * share, rounding.get("invoice"))
            if total > 0:
                charges.append(DatedCharge(a, LineItem(name, item["product"], q, to_decimal(invoice["unit_price"]) * share,
                                                       total, kind=COMMIT_PURCHASE, commit=item["key"], seat=seat,
                                                       credit_type=invoice.get("credit_type") or USD_CREDIT_TYPE_NAME),
                                           ON_SCHEDULE))

    for g, (gs, ge) in enumerate(gens):
        nominal = timegrid.nominal_period(anchor, frequency, gs)
        first, last = g == 0, g == len(gens) - 1 and stop is not None and ge == stop
        share = Decimal(1)
        if (first and proration in ("FIRST", "FIRST_AND_LAST")) or (last and proration in ("LAST", "FIRST_AND_LAST")):
            share = timegrid.fraction(gs, ge, *nominal)
        access_end = ge if duration <= 1 else timegrid.step(anchor, frequency,
                                                             timegrid.boundary_index_at_or_before(anchor, frequency, gs)
                                                             + duration)
        if contract_end is not None:
            access_end = min(access_end, contract_end)
        if holdings is None:
            grant(g, gs, access_end, share, None, units(None))
            continue
        h = holding_at(holdings, gs)
        if individual:
            for seat in h.seats:
                grant(g, gs, access_end, share, seat, Decimal(1))
        else:
            grant(g, gs, access_end, share, None, units(h))
        previous = h
        for change in (x for x in holdings if gs < x.at < ge):
            inc_share = timegrid.fraction(change.at, ge, *nominal) if seat_increase_prorated else Decimal(1)
            if individual:
                for seat in (s for s in change.seats if s not in previous.seats):
                    grant(g, change.at, access_end, inc_share, seat, Decimal(1))
            else:
                delta = units(change) - units(previous)
                if delta > 0:
                    grant(g, change.at, access_end, inc_share, None, delta)
            previous = change
    return segments, charges
