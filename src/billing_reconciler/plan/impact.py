"""Invoice impact of a plan: the same usage events rated before and after the planned change.

Before = the objects as the backend reports them; after = what the backend would hold once the
plan ran (its requests executed on the emulator and rolled back: `service.plan_state`), or, for
`plan --from-ref`, the two revisions' manifests each applied to a throw-away emulator. Both states
come through the same readers. Both are rated over the same window: from each contract's start
to the first of the month after the last event (so the statement period holding the last
events is complete). The usage file is read in place by DuckDB (`read_usage`), and one
aggregation pass serves both states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..canonical import normalize
from ..events.parse import detect_format
from ..rating import BillingState


class UsageFileError(Exception):
    pass


def rating_window_end(last_event: datetime) -> datetime:
    year, month = (last_event.year + 1, 1) if last_event.month == 12 else (last_event.year, last_event.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


@dataclass
class UsageFile:
    """A usage file read in place by DuckDB: an in-memory events database (nothing written)."""

    path: Path
    con: Any
    events: int
    last: datetime | None

    def close(self) -> None:
        self.con.close()


def read_usage(events_path: str | Path, *, memory_limit: str | None = None) -> UsageFile:
    from ..events.billing import events_in_file

    path = Path(events_path)
    try:
        con, result = events_in_file(path, detect_format(str(path)), memory_limit=memory_limit)
    except OSError as exc:
        raise UsageFileError(f"cannot read usage events {path}: {exc.strerror}") from None
    if result.errors:
        con.close()
        listed = "; ".join(str(e) for e in result.errors[:5])
        raise UsageFileError(f"{path}: {len(result.errors)} bad line(s) ({listed}); fix them to compare invoices")
    count, last = con.execute('SELECT count(*), epoch_us(max("timestamp")) FROM usage_events').fetchone()
    return UsageFile(path, con, count, None if last is None else datetime.fromtimestamp(last / 1_000_000, timezone.utc))


def invoice_impact(before_state: BillingState, after_state: BillingState, events_path: str | Path,
                   events: UsageFile | None = None, *, engine: str = "duckdb",
                   spark_url: str | None = None) -> dict[str, Any]:
    """Both states rated over the same events in one aggregation pass, run by `engine` ("duckdb", or
    "spark" on `spark_url`: `events.billing.rate_store`); closes `events`.

    A customer is listed when anything a reviewer reads differs between the states: the invoices'
    total, their subtotal (the charges before any commit or credit paid), the drawdown (what
    commits and credits paid, a negative amount), or a remaining balance. So a change a prepaid
    commit absorbs (same total, more drawn) is listed too. All amounts are cents."""
    from ..events.billing import rate_store

    path = Path(events_path)
    usage = read_usage(path) if events is None else events
    try:
        if not usage.events:
            return {"usage": str(path), "events": 0, "until": None, "customers": []}
        until = rating_window_end(usage.last)
        rated_before, rated_after = rate_store(usage.con, [before_state, after_state], until, engine=engine,
                                               spark_url=spark_url)
    finally:
        usage.close()
    before = customer_figures(rated_before, before_state, until)
    after = customer_figures(rated_after, after_state, until)
    rows = []
    for customer in sorted(set(before) | set(after)):
        b, a = before.get(customer, _NOTHING), after.get(customer, _NOTHING)
        if a == b:
            continue
        names = sorted(set(b["balances"]) | set(a["balances"]))
        rows.append({"customer": customer, "before": normalize(b["total"]), "after": normalize(a["total"]),
                     "delta": normalize(a["total"] - b["total"]),
                     **{name: {"before": normalize(b[name]), "after": normalize(a[name])} for name in FIGURES},
                     "balances": [{"balance": n, "before": normalize(b["balances"].get(n, Decimal(0))),
                                   "after": normalize(a["balances"].get(n, Decimal(0)))} for n in names]})
    return {"usage": str(path), "events": usage.events, "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customers": rows}


# What each customer row compares besides the total (invoices.Invoice has each as a property).
FIGURES = ("subtotal", "drawdown")
_NOTHING: dict[str, Any] = {"total": Decimal(0), "subtotal": Decimal(0), "drawdown": Decimal(0), "balances": {}}


def customer_figures(rated, state: BillingState, until: datetime) -> dict[str, dict[str, Any]]:
    """Per customer: invoice total, subtotal and drawdown (cents), and each commit's and credit's
    balance in force at the end of the window, what is left of it then (`contract/key` -> cents;
    balances not open at `until`, not yet started or already ended, are left out, and postpaid
    commits hold no balance)."""
    out: dict[str, dict[str, Any]] = {}
    for inv in rated.invoices:
        row = out.setdefault(inv.customer, {"total": Decimal(0), "subtotal": Decimal(0), "drawdown": Decimal(0),
                                            "balances": {}})
        row["total"] += inv.total
        row["subtotal"] += inv.subtotal
        row["drawdown"] += inv.drawdown
    for contract, segments in rated.balances.items():
        customer = state.contracts.get(contract, {}).get("customer")
        if customer is None:
            continue
        row = out.setdefault(customer, {"total": Decimal(0), "subtotal": Decimal(0), "drawdown": Decimal(0),
                                        "balances": {}})
        for segment in segments:
            if segment.postpaid or not segment.start < until < segment.end:
                continue
            name = f"{contract}/{segment.key}"
            row["balances"][name] = row["balances"].get(name, Decimal(0)) + segment.remaining
    return out
