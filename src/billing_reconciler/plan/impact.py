"""Invoice impact of a plan: the same usage events rated before and after the planned change.

Before = the objects as the backend reports them; after = what the backend would hold once the
plan ran (its requests executed on the emulator and rolled back: `service.plan_state`), or, for
`plan --from-ref`, the two revisions' manifests each applied to a throw-away emulator. Both states
come through the same readers. Both are rated over the same window: from each contract's start
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
from ..rating import BillingState, rate_events, totals_by_customer


class UsageFileError(Exception):
    pass


def rating_window_end(last_event: datetime) -> datetime:
    year, month = (last_event.year + 1, 1) if last_event.month == 12 else (last_event.year, last_event.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


def read_usage(events_path: str | Path) -> list:
    path = Path(events_path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")  # bad bytes: that line only
        events, errors = parse_text(text, detect_format(str(path)))
    except OSError as exc:
        raise UsageFileError(f"cannot read usage events {path}: {exc.strerror}") from None
    if errors:
        listed = "; ".join(str(e) for e in errors[:5])
        raise UsageFileError(f"{path}: {len(errors)} bad line(s) ({listed}); fix them to compare invoices")
    return events


def invoice_impact(before_state: BillingState, after_state: BillingState, events_path: str | Path,
                   events: list | None = None) -> dict[str, Any]:
    path = Path(events_path)
    events = read_usage(path) if events is None else events
    if not events:
        return {"usage": str(path), "events": 0, "until": None, "customers": []}
    until = rating_window_end(max(e.timestamp for e in events))
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
