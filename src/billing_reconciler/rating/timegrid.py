"""Calendar arithmetic for billing: frequencies, anchored period boundaries, proration fractions.

Periods are half-open [start, end). Boundaries are computed from the anchor (anchor + k steps),
never by repeated addition, so a period anchored on the 31st lands on the last day of shorter
months and returns to the 31st afterwards (Jan 31, Feb 28, Mar 31, ...).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from ..timeutil import parse_timestamp

# Months per step, or None for day-based steps (see DAYS).
MONTHS = {"MONTHLY": 1, "QUARTERLY": 3, "SEMI_ANNUAL": 6, "ANNUAL": 12}
DAYS = {"WEEKLY": 7, "DAILY": 1}


def ts(value: str | datetime | None) -> datetime | None:
    """A canonical timestamp string (or a datetime) as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return _parse(value)


@lru_cache(maxsize=65536)
def _parse(value: str) -> datetime:
    return parse_timestamp(value)


def add_months(value: datetime, months: int) -> datetime:
    month0 = value.month - 1 + months
    year = value.year + month0 // 12
    month = month0 % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


@lru_cache(maxsize=65536)
def step(anchor: datetime, frequency: str, k: int) -> datetime:
    """The k-th boundary after (k > 0) or before (k < 0) `anchor` at `frequency`. Cached: the
    contracts of an account mostly share their anchors, and rating asks for the same steps again."""
    if frequency in MONTHS:
        return add_months(anchor, MONTHS[frequency] * k)
    return anchor + timedelta(days=DAYS[frequency] * k)


def boundary_index_at_or_before(anchor: datetime, frequency: str, t: datetime) -> int:
    """The largest k with step(anchor, frequency, k) <= t."""
    if frequency in MONTHS:
        months = MONTHS[frequency]
        k = ((t.year - anchor.year) * 12 + (t.month - anchor.month)) // months
    else:
        k = (t - anchor).days // DAYS[frequency]
    while step(anchor, frequency, k) > t:
        k -= 1
    while step(anchor, frequency, k + 1) <= t:
        k += 1
    return k


def boundaries(anchor: datetime, frequency: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """Boundaries b of the anchored grid with start < b < end, in order."""
    k = boundary_index_at_or_before(anchor, frequency, start) + 1
    while True:
        b = step(anchor, frequency, k)
        if b >= end:
            return
        if b > start:
            yield b
        k += 1


def periods(anchor: datetime, frequency: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at the grid's boundaries: a stub first/last period where not aligned."""
    cuts = [start, *boundaries(anchor, frequency, start, end), end]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if a < b]


def nominal_period(anchor: datetime, frequency: str, t: datetime) -> tuple[datetime, datetime]:
    """The full grid period that contains t (used as the denominator of proration)."""
    k = boundary_index_at_or_before(anchor, frequency, t)
    return step(anchor, frequency, k), step(anchor, frequency, k + 1)


def fraction(part_start: datetime, part_end: datetime, whole_start: datetime, whole_end: datetime) -> Decimal:
    """Share of a period, by exact elapsed time (seconds). Day-aligned changes give day ratios."""
    whole = (whole_end - whole_start).total_seconds()
    part = (min(part_end, whole_end) - max(part_start, whole_start)).total_seconds()
    if whole <= 0 or part <= 0:
        return Decimal(0)
    return Decimal(int(part)) / Decimal(int(whole))


def first_of_month(value: datetime) -> datetime:
    return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch: the integer form events are bucketed by."""
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
