"""Invoice impact of a plan: the same usage events rated before and after the planned change.

Before = the store as applied; after = the manifests, with the usage-filter history extended by
the filter the plan schedules. Both are rated over the same window: from each contract's start
to the first of the month after the last event (so the statement period holding the last
events is complete).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..canonical import normalize
from ..events.parse import detect_format, parse_text
from ..manifests.document import Manifest
from ..rating import BillingState, rate_events, totals_by_customer
from ..store.store import Snapshot


class UsageFileError(Exception):
    pass


def rating_window_end(last_event: datetime) -> datetime:
    year, month = (last_event.year + 1, 1) if last_event.month == 12 else (last_event.year, last_event.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


def invoice_impact(manifests: list[Manifest], snapshot: Snapshot, history_lookup, events_path: str | Path) -> dict[str, Any]:
    path = Path(events_path)
    try:
        events, errors = parse_text(path.read_text(encoding="utf-8"), detect_format(str(path)))
    except OSError as exc:
        raise UsageFileError(f"cannot read usage events {path}: {exc.strerror}") from None
    if errors:
        listed = "; ".join(str(e) for e in errors[:5])
        raise UsageFileError(f"{path}: {len(errors)} bad line(s) ({listed}); fix them to compare invoices")
    if not events:
        return {"usage": str(path), "events": 0, "until": None, "customers": []}
    until = rating_window_end(max(e.timestamp for e in events))

    before_state = BillingState.from_snapshot(snapshot, history_lookup) if snapshot.initialized else BillingState()
    after_history = {}
    for m in manifests:
        if m.kind != "Contract":
            continue
        history = list(history_lookup(m.name)) if snapshot.initialized else []
        wanted = m.spec.get("usage_filter")
        if wanted is not None:
            entry = {**wanted, "starting_at": wanted.get("starting_at", m.spec["starting_at"])}
            last = history[-1] if history else None
            if last is None or (last.get("group_key"), last.get("group_values")) != (entry["group_key"], entry["group_values"]):
                history.append(entry)
        after_history[m.name] = history
    after_state = BillingState.from_specs(
        {kind: {m.name: m.spec for m in manifests if m.kind == kind}
         for kind in ("BillableMetric", "Product", "RateCard", "Customer", "Contract")},
        after_history, before_state.customer_remote_ids)

    before = totals_by_customer(rate_events(before_state, events, until).invoices)
    after = totals_by_customer(rate_events(after_state, events, until).invoices)
    rows = []
    for customer in sorted(set(before) | set(after)):
        b, a = before.get(customer, Decimal(0)), after.get(customer, Decimal(0))
        if a != b:
            rows.append({"customer": customer, "before": normalize(b), "after": normalize(a),
                         "delta": normalize(a - b)})
    return {"usage": str(path), "events": len(events), "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customers": rows}
