"""Timestamps are timezone-aware UTC; text form is RFC 3339 with a Z suffix."""

from __future__ import annotations

from datetime import datetime, timezone


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp has no timezone")
    return value.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    value = to_utc(value)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive timestamps are refused."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return to_utc(value)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
