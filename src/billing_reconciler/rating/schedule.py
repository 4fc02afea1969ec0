"""Usage statement periods, scheduled charges, and which invoice each dated charge lands on.

Decisions where the sources are silent:
- FIRST_OF_MONTH periods are anchored on the 1st of the contract's start month (a stub from the
  start to the next boundary); CONTRACT_START on the start itself; CUSTOM_DATE on
  billing_anchor_date. The last period ends at the contract's ending_before.
- amount_distribution: EACH bills the amount at every occurrence; DIVIDED splits the total exactly:
  every occurrence but the last is the share rounded down to the cent and the last takes the
  remainder, so the occurrences sum to the total; DIVIDED_ROUNDED rounds every share half-up to the
  cent independently (they may differ from the total by a few cents).
- Consolidation (`scheduled_charges_on_usage_invoices: ALL`, the first product page's rule): a
  scheduled charge or commit invoice goes on the usage invoice whose service period ends
  (exclusive) on the same UTC day as the charge. Otherwise it gets its own SCHEDULED invoice, one
  per contract and date. An engine run has no finalized invoices, so the "not finalized" condition
  always holds.
- Every invoice is issued at a moment (`Invoice.issued_at`): a usage invoice when its statement
  period ends, any other invoice at its date. A dated charge is billed on an invoice issued at its
  date. Subscription charges placed ON_USAGE_INVOICE (the default) go on the usage invoice issued
  that UTC day (the one whose period ends then) and, when none is, on an invoice of their own at
  that date, as a scheduled charge without consolidation would. So an ADVANCE charge dated at its
  service period's start is billed then (seed 002: "2 × annual price invoiced in advance on
  2025-04-23", the contract start), not on the usage invoice of the period it falls in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, round_cents, to_decimal
from . import timegrid
from .invoices import COMMIT_PURCHASE, SCHEDULED, SCHEDULED_CHARGE, USAGE, Invoice, LineItem
from .timegrid import ts

# Placements of a dated charge.
ON_SCHEDULE = "schedule"          # scheduled charges and commit invoices: consolidation rule
ON_USAGE_INVOICE = "on_usage"     # subscriptions: the usage invoice issued at the charge's date, else own
OWN_INVOICE = "own"               # always a SCHEDULED invoice


@dataclass
class DatedCharge:
    at: datetime
    line: LineItem
    placement: str = ON_SCHEDULE
    # Not on a usage invoice: charges with the same date and `invoice` share an invoice.
    invoice: str | None = None


def statement_anchor(contract: Mapping[str, Any]) -> tuple[datetime, str]:
    schedule = contract.get("usage_statement_schedule") or {}
    frequency = schedule.get("frequency", "MONTHLY")
    day = schedule.get("day", "FIRST_OF_MONTH")
    start = ts(contract["starting_at"])
    if day == "CONTRACT_START" or (day == "FIRST_OF_MONTH" and frequency == "WEEKLY"):
        return start, frequency
    if day == "CUSTOM_DATE":
        return ts(schedule.get("billing_anchor_date")) or start, frequency
    return timegrid.first_of_month(start), frequency


def statement_periods(contract: Mapping[str, Any], until: datetime) -> list[tuple[datetime, datetime]]:
    """The contract's usage statement periods that start before `until`."""
    start = ts(contract["starting_at"])
    if start >= until:
        return []
    anchor, frequency = statement_anchor(contract)
    k = timegrid.boundary_index_at_or_before(anchor, frequency, until)
    end = timegrid.step(anchor, frequency, k + 1)
    contract_end = ts(contract.get("ending_before"))
    if contract_end is not None:
        end = min(end, contract_end)
    return [p for p in timegrid.periods(anchor, frequency, start, end) if p[0] < until]


def _amount(item: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(quantity, unit_price) of a schedule item: `amount` means unit_price=amount, quantity=1."""
    if item.get("amount") is not None:
        return Decimal(1), to_decimal(item["amount"])
    return to_decimal(item.get("quantity", 1)), to_decimal(item.get("unit_price", 0))


def occurrences(schedule: Mapping[str, Any]) -> list[tuple[datetime, Decimal, Decimal, Decimal]]:
    """(timestamp, quantity, unit_price, total) of every invoice a schedule generates."""
    if schedule.get("do_not_invoice"):
        return []
    out = []
    for item in schedule.get("schedule_items", []):
        q, p = _amount(item)
        out.append((ts(item["timestamp"]), q, p, round_cents(q * p)))
    rs = schedule.get("recurring_schedule")
    if rs:
        start, end = ts(rs["starting_at"]), ts(rs["ending_before"])
        dates = [start, *timegrid.boundaries(start, rs["frequency"], start, end)]
        q, p = _amount(rs)
        total = q * p
        n = len(dates)
        distribution = rs["amount_distribution"]
        for i, d in enumerate(dates):
            if distribution == "EACH":
                out.append((d, q, p, round_cents(total)))
                continue
            if distribution == "DIVIDED_ROUNDED":
                share = round_cents(total / n)
            else:
                floor = (total / n).quantize(Decimal(1), rounding=ROUND_DOWN)
                share = floor if i < n - 1 else total - floor * (n - 1)
            out.append((d, q, share / q, share))
    return sorted(out, key=lambda o: o[0])


def scheduled_charges(contract: Mapping[str, Any], products: Mapping[str, Mapping[str, Any]]) -> list[DatedCharge]:
    """Scheduled charges and PREPAID commit purchases (their invoice schedules) of a contract."""
    out: list[DatedCharge] = []
    for sc in [*contract.get("scheduled_charges", []), *contract.get("discounts", [])]:
        name = sc.get("name") or products.get(sc["product"], {}).get("name", sc["product"])
        credit_type = sc["schedule"].get("credit_type") or USD_CREDIT_TYPE_NAME
        for at, q, p, total in occurrences(sc["schedule"]):
            out.append(DatedCharge(at, LineItem(name, sc["product"], q, p, total, kind=SCHEDULED_CHARGE,
                                                credit_type=credit_type)))
    for commit in contract.get("commits", []):
        schedule = commit.get("invoice_schedule")
        if not schedule or commit.get("type") == "POSTPAID":
            continue  # a complimentary commit; a POSTPAID one is trued up (balances.postpaid_trueups)
        name = commit.get("name") or products.get(commit["product"], {}).get("name", commit["product"])
        credit_type = schedule.get("credit_type") or USD_CREDIT_TYPE_NAME
        for at, q, p, total in occurrences(schedule):
            out.append(DatedCharge(at, LineItem(name, commit["product"], q, p, total, kind=COMMIT_PURCHASE,
                                                commit=commit["key"], credit_type=credit_type)))
    return out


def assemble(customer: str, contract_key: str, contract: Mapping[str, Any],
             periods: list[tuple[datetime, datetime]], usage_lines: Mapping[int, list[LineItem]],
             charges: list[DatedCharge], until: datetime) -> list[Invoice]:
    """Usage invoices (one per statement period) plus SCHEDULED invoices for charges not consolidated."""
    usage = [Invoice(customer, contract_key, USAGE, ps, pe, list(usage_lines.get(i, [])))
             for i, (ps, pe) in enumerate(periods)]
    issued_on_day = {pe.date(): i for i, (_, pe) in enumerate(periods)}
    consolidate = contract.get("scheduled_charges_on_usage_invoices") == "ALL"
    scheduled: dict[tuple[datetime, str], Invoice] = {}
    for charge in sorted(charges, key=lambda c: c.at):
        target = None
        if charge.placement == ON_USAGE_INVOICE or (charge.placement == ON_SCHEDULE and consolidate):
            target = issued_on_day.get(charge.at.date())
        if target is not None:
            usage[target].line_items.append(charge.line)
            continue
        if charge.at >= until:
            continue
        own = (charge.at, charge.invoice or "")
        inv = scheduled.get(own)
        if inv is None:
            inv = scheduled[own] = Invoice(customer, contract_key, SCHEDULED, charge.at, charge.at)
        inv.line_items.append(charge.line)
    return [*usage, *scheduled.values()]
