"""The rating engine: billing objects + usage events -> invoices. Pure functions; no I/O here."""

from .engine import RatingResult, UsageRequest, prepare, rate, usage_request
from .invoices import Invoice, LineItem, invoices_json, totals_by_customer
from .metrics import MetricQuery, UsageEvent, UsageTable, aggregate_events
from .state import BillingState

__all__ = ["BillingState", "Invoice", "LineItem", "MetricQuery", "RatingResult", "UsageEvent", "UsageRequest",
           "UsageTable", "aggregate_events", "invoices_json", "prepare", "rate", "rate_events", "totals_by_customer", "usage_request"]


def rate_events(state: BillingState, events, until, *, start=None, customers=None) -> RatingResult:
    """Convenience: rate events held in memory (tests, small inputs)."""
    prepared = prepare(state, until, customers)  # once, for the request and the rating
    request = usage_request([state], until, customers, prepared=[prepared])
    return rate(state, aggregate_events(events, request.queries, request.cuts), until, start=start,
                customers=customers, prepared=prepared)
