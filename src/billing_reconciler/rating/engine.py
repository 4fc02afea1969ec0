"""The rating engine: (billing state, aggregated usage, horizon) -> invoices. Pure; no I/O.

Use it in two steps, so the store can aggregate events in SQL in between:

    request = usage_request([state], until)        # which metrics, grouped how, cut where
    usage = <aggregate events for request>          # rating.metrics.aggregate_events or events.aggregate
    result = rate(state, usage, until, start=...)   # invoices

Every contract is rated from its start, whatever `start` asks for, because commit balances and
tiers carry over from earlier periods; `start` only selects which invoices are returned.

Routing (several contracts per customer, the first product page's usage filters): usage goes to
the contracts active at its time whose usage filter (the one in force then) matches its group
value; usage no filter claims goes to an active contract without a filter. If several qualify, the
earliest-starting contract (then key) takes it. Usage on a product the chosen contract has no
entitled rate for is not billed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

from ..money import round_cents, to_decimal
from .balances import COMMIT, CREDIT, Ledger, Segment, access_segments, drawdown_lines, postpaid_trueups
from .composite import composite_lines, composite_order
from .credit_types import fiat_credit_type, one_per_credit_type, price_credit_type
from .invoices import USAGE_CHARGE, Invoice, LineItem
from .metrics import MetricQuery, UsageTable, combine, quantity
from .pricing import bands, price_at, pricing_cuts, resolve_rate_card
from .pro_services import pro_service_charges
from .rollover import renewal_balances
from .transitions import billed_before_end, keeps_trueups, successors
from .schedule import DatedCharge, assemble, scheduled_charges, statement_periods
from .state import BillingState, UsageFilterPeriod
from .subscriptions import recurring_balances, subscription_charges
from .thresholds import ThresholdBilling, daily_cuts
from .timegrid import ts

_QTY_ROUNDING = {"ROUND_UP": ROUND_UP, "ROUND_DOWN": ROUND_DOWN, "ROUND_HALF_UP": ROUND_HALF_UP}


@dataclass
class PreparedContract:
    """Everything about a contract that does not depend on usage."""

    key: str
    customer: str
    spec: Mapping[str, Any]
    card: Mapping[str, Any] | None
    start: datetime
    end: datetime | None
    periods: list[tuple[datetime, datetime]]
    segments: list[Segment]
    charges: list[DatedCharge]
    cuts: list[datetime]
    filters: list[UsageFilterPeriod]
    seat_keys: tuple[str, ...]

    @property
    def period_starts(self) -> list[datetime]:
        starts = self.__dict__.get("_period_starts")
        if starts is None:
            starts = self.__dict__["_period_starts"] = [p[0] for p in self.periods]
        return starts

    def active(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def filter_at(self, t: datetime) -> UsageFilterPeriod | None:
        current = None
        for f in self.filters:
            if ts(f.starting_at) <= t:
                current = f
        return current


def prepare_contract(state: BillingState, key: str, until: datetime) -> PreparedContract:
    spec = state.contracts[key]
    products = state.products
    card_key = resolve_rate_card(state.rate_cards, spec)
    card = state.rate_cards.get(card_key) if card_key else None
    start, end = ts(spec["starting_at"]), ts(spec.get("ending_before"))
    periods = statement_periods(spec, until)
    segments: list[Segment] = []
    for c in spec.get("commits", []):
        segments += access_segments(c, COMMIT, products)
    for c in spec.get("credits", []):
        segments += access_segments(c, CREDIT, products)
    charges = scheduled_charges(spec, products)
    # Periodic charges and balances are generated up to the end of the last statement period: one
    # dated exactly there lands on that usage invoice (issued then).
    limit = max([until, *(p[1] for p in periods)])
    for kind, name in ((COMMIT, "recurring_commits"), (CREDIT, "recurring_credits")):
        for item in spec.get(name, []):
            segs, chs = recurring_balances(spec, item, kind, products, limit)
            segments += segs
            charges += chs
    for sub in spec.get("subscriptions", []):
        charges += subscription_charges(spec, sub, card, products, limit)
    charges += pro_service_charges(spec, state.pro_service_invoices.get(key, []), products)
    seat_keys = sorted({s.seat_key for s in segments if s.seat_key})
    filters = state.usage_filters.get(key, [])
    horizon = periods[-1][1] if periods else start
    points = {start, horizon, *(p[0] for p in periods)}
    points |= {ts(x) for x in pricing_cuts(card, spec)}
    points |= {ts(f.starting_at) for f in filters}
    points |= {s.start for s in segments} | {s.end for s in segments}
    points |= daily_cuts(spec, start, horizon)  # threshold billing is evaluated per day
    cuts = sorted(p for p in points if start <= p <= horizon)
    return PreparedContract(key, spec["customer"], spec, card, start, end, periods, segments, charges, cuts,
                            filters, tuple(seat_keys))


@dataclass
class UsageRequest:
    queries: list[MetricQuery]
    cuts: list[datetime]


def metric_dims(state: BillingState, prepared: Iterable[PreparedContract]) -> dict[str, set[str]]:
    """Per metric: the event properties usage must be grouped by."""
    routing = {f.group_key for p in prepared for f in p.filters} | {k for p in prepared for k in p.seat_keys}
    dims: dict[str, set[str]] = {}
    for product in state.products.values():
        metric = product.get("billable_metric")
        if product.get("type") != "USAGE" or metric not in state.metrics:
            continue
        dims.setdefault(metric, set(routing)).update(product.get("pricing_group_key", []),
                                                     product.get("presentation_group_key", []))
    return dims


def prepare(state: BillingState, until: datetime, customers: Iterable[str] | None = None) -> list[PreparedContract]:
    wanted = set(customers) if customers is not None else None
    return [prepare_contract(state, key, until) for key in sorted(state.contracts)
            if (wanted is None or state.contracts[key]["customer"] in wanted)
            and state.contracts[key]["customer"] in state.customers]


def usage_request(states: Iterable[BillingState], until: datetime,
                  customers: Iterable[str] | None = None, *,
                  prepared: Sequence[list[PreparedContract]] | None = None) -> UsageRequest:
    """The metric queries and cut points that serve every given state (e.g. before and after a plan).
    `prepared`: each state's `prepare(state, until, customers)`, when the caller has it (read only).

    A metric whose definition differs between states gets one query per definition, named
    `key`, `key#2`, ...
    """
    customers = list(customers) if customers is not None else None
    queries: dict[str, MetricQuery] = {}
    cuts: set[datetime] = set()
    for i, state in enumerate(states):
        prepared_state = prepared[i] if prepared is not None else prepare(state, until, customers)
        for p in prepared_state:
            cuts.update(p.cuts)
        for metric, dims in metric_dims(state, prepared_state).items():
            q = MetricQuery.from_spec(metric, state.metrics[metric], dims)
            name, n = metric, 1
            while name in queries and _definition(queries[name]) != _definition(q):
                n += 1
                name = f"{metric}#{n}"
            if name in queries:
                q = MetricQuery.from_spec(metric, state.metrics[metric], set(dims) | set(queries[name].dims))
            queries[name] = q if name == metric else _renamed(q, name)
    return UsageRequest(list(queries.values()), sorted(cuts))


def _definition(q: MetricQuery) -> tuple:
    return (q.aggregation, q.key, q.event_types_in, q.event_types_not_in, q.property_filters)


def _renamed(q: MetricQuery, name: str) -> MetricQuery:
    from dataclasses import replace
    return replace(q, metric=name)


@dataclass
class RatingResult:
    invoices: list[Invoice]
    # Customer references in the usage that match no customer (kept; billed once an alias claims them).
    unattributed: list[str] = field(default_factory=list)
    # Usage that reached a customer but no contract took (no active contract, filter, rate or entitlement).
    unbilled: int = 0
    # Per contract: its commit and credit balances after all its usage through the horizon was drawn
    # (what a renewal would roll over: rating.rollover).
    balances: dict[str, list[Segment]] = field(default_factory=dict)


def _route(contracts: list[PreparedContract], t: datetime, values: Mapping[str, str | None]) -> PreparedContract | None:
    claimed, open_ = [], []
    for c in contracts:
        if not c.active(t):
            continue
        f = c.filter_at(t)
        if f is None:
            open_.append(c)
        elif values.get(f.group_key) in f.group_values:
            claimed.append(c)
    chosen = claimed or open_
    return chosen[0] if chosen else None


def _convert(product: Mapping[str, Any], qty: Decimal) -> Decimal:
    conv = product.get("quantity_conversion")
    if conv:
        factor = to_decimal(conv["conversion_factor"])
        qty = qty * factor if conv["operation"] == "MULTIPLY" else qty / factor
    rounding = product.get("quantity_rounding")
    if rounding:
        qty = qty.quantize(Decimal(1).scaleb(-int(rounding["decimal_places"])),
                           rounding=_QTY_ROUNDING[rounding["rounding_method"]])
    return qty


def _find_query(usage: UsageTable, metric: str, spec: Mapping[str, Any]) -> MetricQuery | None:
    wanted = _definition(MetricQuery.from_spec(metric, spec))
    for q in usage.queries.values():
        if q.metric.split("#")[0] == metric and _definition(q) == wanted:
            return q
    return None


def rate(state: BillingState, usage: UsageTable, until: datetime, *, start: datetime | None = None,
         customers: Iterable[str] | None = None, prepared: list[PreparedContract] | None = None) -> RatingResult:
    """`prepared`: `prepare(state, until, customers)` when the caller made it for `usage_request`
    (rating adds to its contracts' balances and charges: pass each preparation to one rate only)."""
    if prepared is None:
        prepared = prepare(state, until, customers)
    by_customer: dict[str, list[PreparedContract]] = {}
    for p in sorted(prepared, key=lambda p: (p.start, p.key)):
        by_customer.setdefault(p.customer, []).append(p)
    refs = state.customer_refs()
    unattributed = sorted(r for r in usage.refs() if r not in refs)
    products_by_metric: dict[str, list[str]] = {}
    for key in sorted(state.products):
        spec = state.products[key]
        if spec.get("type") == "USAGE" and spec.get("billable_metric"):
            products_by_metric.setdefault(spec["billable_metric"], []).append(key)

    # (contract, product, period, slice, line values) -> aggregate
    acc: dict[tuple, Any] = {}
    aggregation: dict[str, str] = {}
    unbilled = 0
    for metric, product_keys in products_by_metric.items():
        if metric not in state.metrics:
            continue
        q = _find_query(usage, metric, state.metrics[metric])
        if q is None:
            continue
        aggregation[metric] = q.aggregation
        for ref, entries in usage.rows.get(q.metric, {}).items():
            customer = refs.get(ref)
            contracts = by_customer.get(customer) if customer else None
            if not contracts:
                continue
            for (w, dims), value in entries.items():
                t = usage.cuts[w]
                values = dict(zip(q.dims, dims))
                c = _route(contracts, t, values)
                if c is None:
                    unbilled += 1
                    continue
                pidx = bisect.bisect_right(c.period_starts, t) - 1
                if pidx < 0:
                    continue
                sidx = bisect.bisect_right(c.cuts, t) - 1 if q.additive else None
                for pk in product_keys:
                    product = state.products[pk]
                    line_keys = _line_keys(product, c)
                    k = (c.key, pk, pidx, sidx, tuple(values.get(d) for d in line_keys))
                    acc[k] = combine(q.aggregation, acc.get(k), value)

    per_contract: dict[str, list[tuple[tuple, Any]]] = {}
    for k, v in acc.items():
        per_contract.setdefault(k[0], []).append((k, v))
    invoices: list[Invoice] = []
    composites = composite_order(state.products)
    rated: dict[str, list[Segment]] = {}
    replaced = successors(state.contracts)
    for customer in sorted(by_customer):
        contracts = by_customer[customer]  # in start order
        shared = customer_balances(state, customer, contracts)
        trueups_until: dict[str, datetime | None] = {}
        for c in contracts:
            # A renewal starts with what the contract it renews leaves (rating.rollover).
            c.segments += renewal_balances(c.spec, c.start, c.end or _horizon(c), rated)
            rated[c.key] = c.segments
            if c.key in replaced and c.end is not None:  # ended by a transition (rating.transitions)
                c.charges = billed_before_end(c.charges, c.end)
                trueups_until[c.key] = None if keeps_trueups(replaced[c.key]) else c.end
        drawn = {c.key: _usage_charges(state, c, per_contract.get(c.key, []), aggregation, composites)
                 for c in contracts}
        if shared:
            # Customer-level balances: the customer's contracts draw together, in time order.
            contract_of = {id(line): key for key, (_, charges) in drawn.items() for line, _ in charges}
            for c in contracts:
                for seg in c.segments:
                    seg.contracts = frozenset({c.key})
            # (Thresholds are not evaluated for a customer with customer-level balances.)
            Ledger([*(seg for c in contracts for seg in c.segments), *shared]).draw(
                [ch for _, charges in drawn.values() for ch in charges], contract_of=contract_of)
            thresholds: dict[str, ThresholdBilling | None] = {}
        else:
            thresholds = {c.key: _draw_alone(state, c, drawn[c.key][1]) for c in contracts}
        for c in contracts:
            lines_by_period, charges = drawn[c.key]
            invoices += _assemble(state, c, lines_by_period, charges, [*c.segments, *shared], until,
                                  trueups_until.get(c.key), thresholds.get(c.key))
    if start is not None:
        invoices = [inv for inv in invoices
                    if (inv.end_timestamp > start if inv.end_timestamp > inv.start_timestamp
                        else inv.start_timestamp >= start)]
    invoices.sort(key=Invoice.sort_key)
    return RatingResult(invoices, unattributed, unbilled, {c.key: c.segments for c in prepared})


def customer_balances(state: BillingState, customer: str, contracts: list[PreparedContract]) -> list[Segment]:
    """The customer-level commits' and credits' segments (keys `<customer>/<key>`), usable by the
    contracts in applicable_contracts (none: all of the customer's); a PREPAID commit's invoice
    schedule is billed on its invoice_contract, as commit purchases are."""
    spec = state.customers.get(customer) or {}
    out: list[Segment] = []
    for kind, name in ((COMMIT, "commits"), (CREDIT, "credits")):
        for item in spec.get(name, []):
            allowed = frozenset(item["applicable_contracts"]) if item.get("applicable_contracts") else None
            out += [replace(seg, key=f"{customer}/{seg.key}", contracts=allowed, customer_level=True)
                    for seg in access_segments(item, kind, state.products)]
            invoiced_on = [c for c in contracts if c.key == item.get("invoice_contract")]
            if kind == COMMIT and invoiced_on and item.get("type") != "POSTPAID":
                invoiced_on[0].charges += scheduled_charges({"commits": [{**item, "key": f"{customer}/{item['key']}"}]},
                                                            state.products)
    return out


def _horizon(c: PreparedContract) -> datetime:
    return c.periods[-1][1] if c.periods else c.start


def _line_keys(product: Mapping[str, Any], c: PreparedContract) -> tuple[str, ...]:
    keys = [*product.get("pricing_group_key", []), *product.get("presentation_group_key", []), *c.seat_keys]
    return tuple(dict.fromkeys(keys))


def _usage_charges(state: BillingState, c: PreparedContract, acc: list[tuple[tuple, Any]],
                   aggregation: Mapping[str, str], composites: list[str]
                   ) -> tuple[dict[int, list[LineItem]], list[tuple[LineItem, Mapping[str, Any]]]]:
    """The contract's usage lines per statement period, and each as a charge to draw balances for."""
    mine = sorted(acc,
                  key=lambda kv: (kv[0][2], kv[0][1], -1 if kv[0][3] is None else kv[0][3],
                                  tuple("" if x is None else x for x in kv[0][4])))
    used: dict[tuple, Decimal] = {}
    lines_by_period: dict[int, list[LineItem]] = {}
    charges: list[tuple[LineItem, Mapping[str, Any]]] = []
    for (_, pk, pidx, sidx, dvals), value in mine:
        product = state.products[pk]
        metric = product["billable_metric"]
        line_keys = _line_keys(product, c)
        values = dict(zip(line_keys, dvals))
        pricing = {k: values.get(k) for k in product.get("pricing_group_key", [])}
        presentation = {k: values.get(k) for k in product.get("presentation_group_key", [])}
        ps, pe = c.periods[pidx]
        if sidx is None:
            a, b = ps, pe
        else:
            a, b = c.cuts[sidx], c.cuts[min(sidx + 1, len(c.cuts) - 1)]
        found = price_at(c.card, c.spec, pk, product, a, pricing, presentation)
        if found is None or not found.entitled:
            continue
        qty = _convert(product, quantity(aggregation[metric], value))
        tier_key = (pk, pidx, tuple(sorted(pricing.items(), key=lambda kv: kv[0])))
        done = used.get(tier_key, Decimal(0))
        used[tier_key] = done + qty
        shown = {k: v for k, v in values.items() if v is not None}
        for band in bands(found.price, done, qty):
            line = LineItem(product.get("name", pk), pk, band.quantity, band.unit_price,
                            round_cents(band.quantity * band.unit_price), kind=USAGE_CHARGE,
                            group_values=shown, override=found.price.override, tier=band.tier,
                            starting_at=a, ending_before=b, credit_type=price_credit_type(found, c.spec))
            lines_by_period.setdefault(pidx, []).append(line)
            charges.append((line, product))
    for lines in lines_by_period.values() if composites else ():
        extra = composite_lines(c.card, c.spec, state.products, composites, lines)
        lines += extra
        charges += [(line, state.products[line.product]) for line in extra]
    return lines_by_period, charges


def _draw_alone(state: BillingState, c: PreparedContract, charges: list[tuple[LineItem, Mapping[str, Any]]]
                ) -> ThresholdBilling | None:
    """Draw a contract's own balances for its usage charges, its thresholds evaluated as they go
    (rating.thresholds); the threshold billing, if the contract has any."""
    ledger = Ledger(c.segments)
    thresholds = ThresholdBilling.of(c.spec, state.products, ledger, c.period_starts, fiat_credit_type(c.card),
                                     c.start)
    ledger.draw(charges, thresholds.after_window if thresholds else None)
    return thresholds


def _assemble(state: BillingState, c: PreparedContract, lines_by_period: dict[int, list[LineItem]],
              charges: list[tuple[LineItem, Mapping[str, Any]]], segments: list[Segment], until: datetime,
              trueups_until: datetime | None = None, thresholds: ThresholdBilling | None = None) -> list[Invoice]:
    """The contract's invoices once its usage charges were drawn from `segments`, one per credit type."""
    usage_lines = {pidx: [*lines, *drawdown_lines(lines, segments)] for pidx, lines in lines_by_period.items()}
    trueups = postpaid_trueups(c.spec, (line for line, _ in charges), state.products)
    if trueups_until is not None:
        trueups = [t for t in trueups if t.at < trueups_until]
    invoices = assemble(c.customer, c.key, c.spec, c.periods, usage_lines, [*c.charges, *trueups], until)
    if thresholds:
        invoices += thresholds.invoices(c.customer, c.key, until)
    return one_per_credit_type(invoices, c.card)
