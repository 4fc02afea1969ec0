"""Field types shared by the manifest models: timestamps, money, enums, keys."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from ..bounds import BOUND, out_of_bounds
from ..money import is_whole_cents, to_decimal
from ..timeutil import to_utc

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

# The stable identity of an object or of a keyed list item.
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=128)]
# A reference to another object by its key; checked against the loaded objects.
Ref = Annotated[str, StringConstraints(min_length=1)]


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HAS_ZONE = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_HAS_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d")


def _timestamp_in(value: Any) -> Any:
    """Refuse, with the fix spelled out, what pydantic would silently take or call a bare error:
    a date without a time (read as local midnight), a time without a zone, a number (read as
    seconds since 1970: `2024` would be 1970-01-01T00:33:44Z)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 20 and value[-1] == "Z":
        return value  # the usual 2024-11-01T00:00:00Z: nothing to refuse, skip the regexes
    invalid = calendar_problem(value.strip()) if isinstance(value, str) else None
    if invalid:  # before the other checks: "no timezone" would send the author the wrong way
        raise ValueError(invalid)
    if isinstance(value, date) or (isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip())):
        day = value.isoformat() if isinstance(value, date) else value.strip()
        raise ValueError(f"'{day}' is a date without a time; write a UTC timestamp: {day}T00:00:00Z")
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp such as 2024-11-01T00:00:00Z, got {value!r}")
    text = value.strip()
    if _HAS_TIME.match(text) and not _HAS_ZONE.search(text):
        raise ValueError(f"'{text}' has no timezone; write it in UTC with a Z suffix: {text}Z")
    return value


_DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def calendar_problem(text: str) -> str | None:
    """Why a timestamp-looking text names no real moment (2025-02-31, month 13, 25:00), or None."""
    import calendar

    found = _DATE_TIME.match(text)
    if found is None:
        return None
    year, month, day = (int(found.group(i)) for i in (1, 2, 3))
    fix = "; write a real date and time in UTC, e.g. 2024-11-01T00:00:00Z"
    if not 1 <= month <= 12:
        return f"'{text}' is not a valid date: there is no month {month:02d}{fix}"
    days = calendar.monthrange(year, month)[1] if year >= 1 else 31
    if not 1 <= day <= days:
        return f"'{text}' is not a valid date: {_MONTHS[month - 1]} {year} has {days} days{fix}"
    hour, minute, second = (int(found.group(i) or 0) for i in (4, 5, 6))
    if hour > 23 or minute > 59 or second > 59:
        return f"'{text}' is not a valid time of day{fix}"
    return None


def _aware_utc(value: datetime) -> datetime:
    try:
        return to_utc(value)
    except ValueError:
        raise ValueError(
            "timestamp has no timezone; write it in UTC with a Z suffix, e.g. 2024-11-01T00:00:00Z"
        ) from None


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_in), AfterValidator(_aware_utc)]


def _decimal_in(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        raise ValueError(f"too large (read as {value}): {BOUND}")  # e.g. 1e400
    if isinstance(value, (int, float)):
        return to_decimal(value)
    return value


def _whole_cents(value: Decimal) -> Decimal:
    if not is_whole_cents(value):
        low = value.to_integral_value(rounding="ROUND_FLOOR")
        raise ValueError(
            f"{value} is not a whole number of cents (amounts are in cents: 100 = $1.00); "
            f"use {low} or {low + 1}"
        )
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"quantity must be greater than 0, got {value}")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _fraction(value: Decimal) -> Decimal:
    if not (0 <= value <= 1):
        raise ValueError(f"must be a fraction between 0 and 1, got {value}")
    return value


def _bounded(value: Decimal) -> Decimal:
    reason = out_of_bounds(value)
    if reason:
        raise ValueError(reason)
    return value


# Every number is within the one stated bound (bounds.py), or rating could not compute with it.
Number = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded)]
# An amount of money in cents that must be invoiceable: a whole, non-negative number of cents.
Cents = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded), AfterValidator(_non_negative),
                  AfterValidator(_whole_cents)]
# A unit price may be a fraction of a cent (e.g. 0.5 cents per API call).
Price = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded), AfterValidator(_non_negative)]
Quantity = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded), AfterValidator(_positive)]
NonNegative = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded), AfterValidator(_non_negative)]
Fraction = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_bounded), AfterValidator(_fraction)]


def _upper(value: Any) -> Any:
    # The API accepts both spellings ("prepaid" and "PREPAID"); the canonical form is upper case.
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def UpperEnum(*values: str) -> Any:  # noqa: N802 - reads like a type
    return Annotated[Literal[values], BeforeValidator(_upper)]  # type: ignore[valid-type]


def LowerEnum(*values: str) -> Any:  # noqa: N802
    return Annotated[Literal[values], BeforeValidator(_lower)]  # type: ignore[valid-type]


NonEmptyList = Field(min_length=1)

BillingFrequency = UpperEnum("MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY")
ScheduleFrequency = UpperEnum("MONTHLY", "QUARTERLY", "SEMI_ANNUAL", "ANNUAL")
RateType = UpperEnum("FLAT", "PERCENTAGE", "SUBSCRIPTION", "TIERED", "TIERED_PERCENTAGE", "CUSTOM")
CommitRateType = UpperEnum("COMMIT_RATE", "LIST_RATE")
RoundingMethod = UpperEnum("HALF_UP", "FLOOR", "CEILING")
BillingProvider = LowerEnum(
    "aws_marketplace", "azure_marketplace", "gcp_marketplace", "stripe", "netsuite",
    "custom", "quickbooks_online", "workday", "metronome",
)
DeliveryMethod = LowerEnum("direct_to_billing_provider", "aws_sqs", "tackle", "aws_sns")


_SENSITIVE_PATH = re.compile(r"spec(\.[A-Za-z_][A-Za-z0-9_-]*(\[[^\]]*\])?)+")


def _sensitive_path(value: str) -> str:
    if not _SENSITIVE_PATH.fullmatch(value):
        raise ValueError(f"'{value}' is not a path to a spec field; write spec.FIELD[.FIELD...], "
                         "e.g. spec.custom_fields.crm_account")
    return value


# A `metadata.sensitive` entry: a spec field whose values are secrets (spec.custom_fields.crm_account).
SensitivePath = Annotated[str, AfterValidator(_sensitive_path)]


def _ignore_path(value: str) -> str:
    from ..ignorepaths import parse_path

    parse_path(value)  # ValueError with the way to write it
    return value


# A `metadata.ignore_changes` entry: spec.FIELD[.FIELD...], list items by key or all of them
# (spec.commits[prepaid-2024].access_schedule, spec.overrides[*].priority). Whether the fields
# exist in the kind's spec is checked by manifests.lifecycle, which knows the kind.
IgnorePath = Annotated[str, AfterValidator(_ignore_path)]
