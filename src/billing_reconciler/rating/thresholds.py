"""Threshold billing (reference §3.10, §5.11; seeds 003/004): a spend threshold invoices the usage
accrued so far when it reaches `threshold_amount`; a prepaid balance threshold recharges the
balance to `recharge_to_amount` when it falls to `threshold_amount`. Each makes a THRESHOLD invoice
issued at the crossing, for a threshold commit (its `commit.product`, named `commit.name` or the
product's name).

Decisions where the sources are silent:
- Evaluation is per UTC day: a contract with an enabled threshold is rated in daily windows (its
  usage lines are per day) and each day's usage is checked once it is drawn; the crossing, and the
  threshold invoice, are at the end of that day. (Metronome checks as events arrive; the events
  engine aggregates by window, and a day bounds the work.)
- Spend threshold: the spend is the contract's usage charges in the fiat credit type that no
  balance paid and no invoice billed yet: since the later of the last threshold invoice and the
  start of the current statement period (the usage invoice issued at a period's end bills what
  accrued in it). When it reaches the
  threshold, the whole accrued amount is invoiced and a threshold commit of that amount pays those
  charges ("a prepaid commit is issued, bringing the total outstanding spend back to $0"): on
  their usage invoice they show as paid by `spend_threshold_configuration`, so nothing is billed
  twice. Subscription, scheduled and commit charges are not usage and do not count.
- Prepaid balance threshold: the balance is what the contract's prepaid commits and credits open
  at that moment have left, in the threshold's credit type (`custom_credit_type`, else fiat);
  `threshold_balance_specifiers` (custom-field exclusions) are not modelled. When it is at or below
  `threshold_amount`, a commit of `recharge_to_amount - balance` is bought: a balance open from the
  crossing for `commit.duration` (default one year), applying to the products the commit names
  (all when none), priority `commit.priority` (default 100). It is checked at the contract start
  too ("toggling to true will result an immediate evaluation"), so a contract without a prepaid
  commit is recharged to `recharge_to_amount` on day one.
- `discount_configuration.payment_fraction`: the invoice bills that fraction of the commit,
  rounded half up to the cent (reference §5.11: $42 at 0.85 -> $35.70); the commit keeps its full
  amount. Caps (spend trackers) and payment gates are not modelled: every threshold invoice is
  taken as paid.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, round_cents, to_decimal
from . import timegrid
from .balances import COMMIT, Ledger, Scope, Segment
from .invoices import USAGE_CHARGE, Invoice, LineItem

THRESHOLD = "THRESHOLD"            # the invoice type
THRESHOLD_CHARGE = "threshold_charge"  # its line's kind
SPEND = "spend_threshold_configuration"
PREPAID = "prepaid_balance_threshold_configuration"
DEFAULT_PRIORITY = Decimal(100)
_DURATION_MONTHS = {"MONTHS": 1, "YEARS": 12}
_DURATION_DAYS = {"DAYS": 1, "WEEKS": 7}
_INSTANT = timedelta(microseconds=1)  # a window's end belongs to the next window


def enabled(contract: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    config = contract.get(name)
    return config if config and config.get("is_enabled") else None


def daily_cuts(contract: Mapping[str, Any], start: datetime, horizon: datetime) -> set[datetime]:
    """Every UTC midnight in [start, horizon] for a contract with an enabled threshold."""
    if not (enabled(contract, SPEND) or enabled(contract, PREPAID)):
        return set()
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = set()
    while day <= horizon:
        if day >= start:
            out.add(day)
        day += timedelta(days=1)
    return out


@dataclass
class ThresholdBilling:
    """Watches one contract's drawing (Ledger.draw's after_window) and records threshold invoices."""

    contract: Mapping[str, Any]
    products: Mapping[str, Mapping[str, Any]]
    ledger: Ledger
    period_starts: list[datetime]
    fiat: str = USD_CREDIT_TYPE_NAME
    charges: list[tuple[datetime, LineItem]] = field(default_factory=list)
    _accrued: list[tuple[LineItem, Decimal]] = field(default_factory=list)

    @classmethod
    def of(cls, contract: Mapping[str, Any], products: Mapping[str, Mapping[str, Any]], ledger: Ledger,
           period_starts: list[datetime], fiat: str, start: datetime) -> ThresholdBilling | None:
        if not (enabled(contract, SPEND) or enabled(contract, PREPAID)):
            return None
        billing = cls(contract, products, ledger, period_starts, fiat)
        billing._recharge(start)  # enabling evaluates at once
        return billing

    def after_window(self, end: datetime, lines: list[LineItem]) -> None:
        self._spend(end, lines)
        self._recharge(end)

    # --- spend threshold ---------------------------------------------------------------------

    def _spend(self, end: datetime, lines: list[LineItem]) -> None:
        config = enabled(self.contract, SPEND)
        if config is None:
            return
        # What an earlier statement period accrued was billed by its usage invoice.
        period = bisect.bisect_right(self.period_starts, end - _INSTANT) - 1
        self._accrued = [(li, u) for li, u in self._accrued
                         if bisect.bisect_right(self.period_starts, li.starting_at) - 1 == period]
        for line in lines:
            if line.kind == USAGE_CHARGE and line.credit_type == self.fiat:
                unpaid = line.total - sum(line.paid_by.values(), Decimal(0))
                if unpaid > 0:
                    self._accrued.append((line, unpaid))
        accrued = sum((u for _, u in self._accrued), Decimal(0))
        if accrued <= 0 or accrued < to_decimal(config["threshold_amount"]):
            return
        commit = self._commit(SPEND, config, end, end, accrued)
        commit.used = accrued  # it pays the accrued charges now, and nothing after
        self.ledger.add(commit)
        for line, unpaid in self._accrued:
            line.paid_by[SPEND] = line.paid_by.get(SPEND, Decimal(0)) + unpaid
        self._accrued = []
        self._invoice(config, end, commit)

    # --- prepaid balance threshold --------------------------------------------------------------

    def _recharge(self, at: datetime) -> None:
        config = enabled(self.contract, PREPAID)
        if config is None:
            return
        credit_type = config.get("custom_credit_type") or self.fiat
        balance = sum((s.remaining for s in self.ledger.open_until(at)
                       if s.start <= at < s.end and not s.postpaid and s.credit_type == credit_type), Decimal(0))
        if balance > to_decimal(config["threshold_amount"]):
            return
        amount = to_decimal(config["recharge_to_amount"]) - balance
        if amount <= 0:
            return
        commit = self._commit(PREPAID, config, at, _expiry(at, config["commit"].get("duration")), amount, credit_type)
        self.ledger.add(commit)
        self._invoice(config, at, commit)

    # --- shared ------------------------------------------------------------------------------

    def _commit(self, key: str, config: Mapping[str, Any], start: datetime, end: datetime, amount: Decimal,
                credit_type: str | None = None) -> Segment:
        commit = config["commit"]
        name = commit.get("name") or self.products.get(commit["product"], {}).get("name", commit["product"])
        priority = to_decimal(commit["priority"]) if commit.get("priority") is not None else DEFAULT_PRIORITY
        return Segment(key, COMMIT, name, commit["product"], priority, start, end, amount, Scope.of(commit),
                       credit_type=credit_type or self.fiat)

    def _invoice(self, config: Mapping[str, Any], at: datetime, commit: Segment) -> None:
        fraction = to_decimal((config.get("discount_configuration") or {}).get("payment_fraction", 1))
        billed = round_cents(commit.amount * fraction)
        self.charges.append((at, LineItem(commit.name, commit.product, Decimal(1), billed, billed,
                                          kind=THRESHOLD_CHARGE, commit=commit.key, credit_type=commit.credit_type)))

    def invoices(self, customer: str, contract_key: str, until: datetime) -> list[Invoice]:
        """One THRESHOLD invoice per crossing (before `until`), issued at it."""
        return [Invoice(customer, contract_key, THRESHOLD, at, at, [line], credit_type=line.credit_type)
                for at, line in self.charges if at < until]


def _expiry(start: datetime, duration: Mapping[str, Any] | None) -> datetime:
    unit, value = ((duration or {}).get("unit", "YEARS"), int((duration or {}).get("value", 1)))
    if unit in _DURATION_MONTHS:
        return timegrid.add_months(start, _DURATION_MONTHS[unit] * value)
    return start + timedelta(days=_DURATION_DAYS[unit] * value)

