"""Commits and credits: balance segments and the drawdown of usage charges against them.

A balance is a list of segments, each an amount usable in [start, end) (an access schedule item,
or one period of a recurring commit/credit, or a seat's share of it). Charges are drawn in time
order; each charge takes from the applicable segments that are open at the charge's time, in
priority order.

Decisions where the sources are silent:
- Balances pay usage charges only (not subscription fees, scheduled charges or commit purchases).
- A POSTPAID commit is a promise to spend (seed 003), paid in arrears: usage it applies to is
  drawn from it in the same order as any balance, but stays billed on the usage invoice (the line
  records it in `counts_toward`, no drawdown line). At its invoice-schedule timestamp a true-up
  bills the unmet part: the committed amount minus the usage drawn from it before that moment,
  nothing when met (API: "If the total amount paid during the access period is less than the
  committed amount, there's a final true-up invoice on the invoice_date").
- Applicability: `applicable_products` and `applicable_product_tags` together select the listed
  products plus every product carrying any of the listed tags; `specifiers` match when at least one
  matches (all of a specifier's conditions, all of its tags); none of them: every product.
- Order: lower `priority` first (a balance without priority after all with one); ties: the segment
  that expires first, then credits before commits (free balance before paid), then key, then seat.
- Rollover (`rollover_fraction`) applies between the successive periods of a recurring commit or
  credit: when a period's balance opens, the given fraction of the previous period's unused
  balance (of the same seat, for individual seat allocations) is added to it.
- A one-off commit or credit rolls over only into a new contract: the API's rollover ledger
  entries (PREPAID_COMMIT_ROLLOVER, CREDIT_ROLLOVER) all require a `new_contract_id`, and a
  rolled-over commit records `rolled_over_from {contract_id, commit_id}`; seed 003 says "between
  contract periods". So within one contract it changes nothing; `rollover.py` computes what a
  RENEWAL transition would carry over, for when transitions exist.
- A balance pays only charges in its own credit type (its access schedule's or access amount's;
  USD cents by default): Metronome's pricing-units page says usage priced in a custom pricing unit
  "burns down credits and prepaid commits with access schedules in that custom pricing unit".
- `access_type: QUANTITY` and `rate_type: COMMIT_RATE` are not modelled: balances are drawn in
  cents at list price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..money import USD_CREDIT_TYPE_NAME, round_cents, to_decimal
from .invoices import DRAWDOWN, POSTPAID_TRUEUP, USAGE_CHARGE, LineItem
from .schedule import DatedCharge, occurrences
from .timegrid import ts

COMMIT = "commit"
CREDIT = "credit"


@dataclass(frozen=True)
class Scope:
    products: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    specifiers: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Scope:
        return cls(frozenset(item.get("applicable_products", [])), frozenset(item.get("applicable_product_tags", [])),
                   tuple(item.get("specifiers", [])))

    def applies(self, product_key: str, product: Mapping[str, Any], group_values: Mapping[str, str]) -> bool:
        tags = set(product.get("tags", []))
        if self.specifiers:
            for s in self.specifiers:
                if s.get("product") is not None and s["product"] != product_key:
                    continue
                if s.get("product_tags") and not set(s["product_tags"]) <= tags:
                    continue
                values = {**(s.get("pricing_group_values") or {}), **(s.get("presentation_group_values") or {})}
                if any(group_values.get(k) != v for k, v in values.items()):
                    continue
                return True
            return False
        if not self.products and not self.tags:
            return True
        return product_key in self.products or bool(self.tags & tags)


@dataclass
class Segment:
    key: str
    kind: str  # COMMIT or CREDIT
    name: str
    product: str
    priority: Decimal | None
    start: datetime
    end: datetime
    amount: Decimal
    scope: Scope
    seat: str | None = None
    seat_key: str | None = None
    # Recurring balances: the chain a segment belongs to (key, seat) and its period number.
    chain: tuple[str, str | None] | None = None
    generation: int = 0
    rollover_fraction: Decimal | None = None
    postpaid: bool = False
    credit_type: str = USD_CREDIT_TYPE_NAME
    used: Decimal = Decimal(0)
    opened: bool = False
    # Customer-level balances: the contracts that may draw on it (None: any of the customer's).
    contracts: frozenset[str] | None = None
    customer_level: bool = False
    # A renewal's rolled-over balance: what these (the old contract's) leave, computed when it opens.
    rolled_from: tuple[Segment, ...] = ()

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.used

    def order(self) -> tuple:
        # On a priority tie, contract-level balances before customer-level ones (the API's rule).
        return (self.priority is None, self.priority if self.priority is not None else 0, self.customer_level,
                self.end, self.kind != CREDIT, self.key, self.seat or "")


def access_segments(item: Mapping[str, Any], kind: str, products: Mapping[str, Mapping[str, Any]]) -> list[Segment]:
    """The segments of a one-off commit or credit (its access schedule)."""
    name = item.get("name") or products.get(item["product"], {}).get("name", item["product"])
    priority = to_decimal(item["priority"]) if item.get("priority") is not None else None
    rollover = to_decimal(item["rollover_fraction"]) if item.get("rollover_fraction") is not None else None
    postpaid = kind == COMMIT and item.get("type") == "POSTPAID"
    credit_type = item["access_schedule"].get("credit_type") or USD_CREDIT_TYPE_NAME
    return [Segment(item["key"], kind, name, item["product"], priority, ts(s["starting_at"]), ts(s["ending_before"]),
                    to_decimal(s["amount"]), Scope.of(item), rollover_fraction=rollover, postpaid=postpaid,
                    credit_type=credit_type)
            for s in item["access_schedule"]["schedule_items"]]


def carried_over(segment: Segment) -> Decimal:
    """What of a segment's unused balance rolls over: its rollover_fraction, to the cent (half up)."""
    if not segment.rollover_fraction or segment.remaining <= 0:
        return Decimal(0)
    return round_cents(segment.remaining * segment.rollover_fraction)


@dataclass
class Ledger:
    segments: list[Segment] = field(default_factory=list)
    # The segments by start, and how many of them are open (drawing moves forward in time).
    _pending: list[Segment] | None = field(default=None, init=False, repr=False)
    _opened: int = field(default=0, init=False, repr=False)

    def _open(self, segment: Segment) -> None:
        segment.opened = True
        if segment.rolled_from:
            segment.amount += sum((carried_over(s) for s in segment.rolled_from), Decimal(0))
        if segment.chain is None or segment.generation == 0:
            return
        previous = [s for s in self.segments
                    if s.chain == segment.chain and s.generation == segment.generation - 1]
        for s in previous:
            if not s.opened:
                self._open(s)
        segment.amount += sum((carried_over(s) for s in previous), Decimal(0))

    def open_until(self, t: datetime) -> list[Segment]:
        """Open every segment that starts at or before t; the opened ones, in start order."""
        if self._pending is None:
            self._pending = sorted(self.segments, key=lambda s: (s.start, s.order()))
        pending, i = self._pending, self._opened
        while i < len(pending) and pending[i].start <= t:
            self._open(pending[i])
            i += 1
        self._opened = i
        return pending[:i]

    def add(self, segment: Segment) -> None:
        """A balance that appears while drawing (a threshold commit); it opens at its start."""
        self.segments.append(segment)
        if self._pending is not None:
            i = self._opened
            self._pending[i:] = sorted([*self._pending[i:], segment], key=lambda s: (s.start, s.order()))

    def draw(self, charges: Iterable[tuple[LineItem, Mapping[str, Any]]],
             after_window: Callable[[datetime, list[LineItem]], None] | None = None,
             contract_of: Mapping[int, str] | None = None) -> None:
        """Pay usage charges (line, product spec), in time order; fills each line's `paid_by`.
        `after_window(end, lines)` is called once the charges of each time window (lines with the
        same starting_at) are drawn, with the window's end and lines (rating.thresholds).
        `contract_of` (id(line) -> contract key): several contracts drawn together, each balance
        only by the contracts it names."""
        ordered = sorted(charges, key=lambda c: (c[0].starting_at, c[0].product))
        first = 0  # the window's first line
        for n, (line, product) in enumerate(ordered):
            self._draw_one(line, product, contract_of)
            if after_window is not None and (n + 1 == len(ordered) or ordered[n + 1][0].starting_at != line.starting_at):
                after_window(line.ending_before or line.starting_at, [li for li, _ in ordered[first:n + 1]])
                first = n + 1

    def _draw_one(self, line: LineItem, product: Mapping[str, Any], contract_of: Mapping[int, str] | None) -> None:
        if line.kind != USAGE_CHARGE or line.total <= 0:
            return
        t = line.starting_at
        opened = self.open_until(t)
        due = line.total - sum(line.paid_by.values(), Decimal(0)) - sum(line.counts_toward.values(), Decimal(0))
        for seg in sorted((s for s in opened if s.end > t and s.remaining > 0), key=Segment.order):
            if due <= 0:
                break
            if seg.credit_type != line.credit_type:
                continue
            if seg.seat is not None and line.group_values.get(seg.seat_key or "") != seg.seat:
                continue
            if contract_of is not None and seg.contracts is not None and contract_of[id(line)] not in seg.contracts:
                continue
            if not seg.scope.applies(line.product, product, line.group_values):
                continue
            take = min(due, seg.remaining)
            seg.used += take
            due -= take
            label = seg.key if seg.seat is None else f"{seg.key}[{seg.seat}]"
            drawn = line.counts_toward if seg.postpaid else line.paid_by
            drawn[label] = drawn.get(label, Decimal(0)) + take


def drawdown_lines(lines: Iterable[LineItem], segments: list[Segment]) -> list[LineItem]:
    """One negative line per balance (and seat) that paid some of `lines`."""
    by_label = {(s.key if s.seat is None else f"{s.key}[{s.seat}]"): s for s in segments}
    totals: dict[str, Decimal] = {}
    for line in lines:
        for label, amount in line.paid_by.items():
            totals[label] = totals.get(label, Decimal(0)) + amount
    out = []
    for label, amount in sorted(totals.items()):
        seg = by_label[label]
        out.append(LineItem(seg.name, seg.product, Decimal(1), -amount, -amount, kind=DRAWDOWN,
                            commit=seg.key if seg.kind == COMMIT else None,
                            credit=seg.key if seg.kind == CREDIT else None, seat=seg.seat,
                            credit_type=seg.credit_type))
    return out


def postpaid_trueups(contract: Mapping[str, Any], lines: Iterable[LineItem],
                     products: Mapping[str, Mapping[str, Any]]) -> list[DatedCharge]:
    """The true-up of each POSTPAID commit: what its usage left unmet at its invoice date."""
    postpaid = [c for c in contract.get("commits", []) if c.get("type") == "POSTPAID" and c.get("invoice_schedule")]
    if not postpaid:
        return []
    lines = list(lines)
    out: list[DatedCharge] = []
    for commit in postpaid:
        name = commit.get("name") or products.get(commit["product"], {}).get("name", commit["product"])
        for at, _, _, committed in occurrences(commit["invoice_schedule"]):
            drawn = sum((line.counts_toward.get(commit["key"], Decimal(0)) for line in lines
                         if line.starting_at is not None and line.starting_at < at), Decimal(0))
            unmet = committed - drawn
            if unmet > 0:
                out.append(DatedCharge(at, LineItem(
                    name, commit["product"], Decimal(1), unmet, unmet, kind=POSTPAID_TRUEUP, commit=commit["key"],
                    credit_type=commit["invoice_schedule"].get("credit_type") or USD_CREDIT_TYPE_NAME)))
    return out
