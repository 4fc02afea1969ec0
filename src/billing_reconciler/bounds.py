"""The numbers billing accepts: one stated bound, checked where numbers come in.

A usage value or a price is at most 15 significant digits, at most 9 of them after the decimal
point, and less than 10^15 in magnitude (a quadrillion: 10^13 dollars in cents). Past that an event
value of `1e400` or 32 nines, or a unit price of 10^40, was stored and then crashed `invoices` and
`plan --usage` with decimal.InvalidOperation, and `12345678901234567.5` lost digits silently
(summed through SQLite's 64-bit floats and its integers scaled by 10^9). Within it, every value
survives a float round trip exactly (15 digits) and a sum scaled by 10^9 stays exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# Times: statement periods and rating windows run past the last event or --end (up to a year, for
# annual schedules), and Python's calendar ends with 9999.
LAST_YEAR = 9000

MAX_DIGITS = 15
MAX_PLACES = 9
LIMIT = 10**MAX_DIGITS
BOUND = (f"numbers may have at most {MAX_DIGITS} significant digits, at most {MAX_PLACES} after the decimal "
         f"point, and must be less than 10^{MAX_DIGITS} in magnitude")


def out_of_bounds(value: Decimal | int | float) -> str | None:
    """Why a number is refused, or None if it is within the bound."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -LIMIT < value < LIMIT else f"{_short(value)} is too large: {BOUND}"
    if isinstance(value, float):
        if value != value:
            return None  # NaN: not a number, never summed (events.shapes keeps it as a property)
        if value in (float("inf"), float("-inf")):
            return f"{value} is not a finite number: {BOUND}"
        value = Decimal(repr(value))
    if not value.is_finite():
        return None if value.is_nan() else f"{value} is not a finite number: {BOUND}"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return None  # zero, however written
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:  # trailing zeros say nothing (as normalize(), without rounding)
        end -= 1
        exponent += 1
    start = 0
    while start < end - 1 and digits[start] == 0:
        start += 1
    significant = end - start
    places = max(0, -exponent)
    if significant + exponent > MAX_DIGITS:
        return f"{_short(value)} is too large: {BOUND}"
    if significant > MAX_DIGITS or places > MAX_PLACES:
        return f"{_short(value)} is too precise: {BOUND}"
    return None


def first_out_of_bounds(value: Any, path: str = "", max_depth: int = 64) -> tuple[str, str] | None:
    """(path, reason) of the first number out of bounds in a JSON-like value, or of a value
    nested deeper than `max_depth`; None if there is none."""
    kind = type(value)
    if max_depth < 0:
        return path, "nested too deeply"
    if kind is int or kind is Decimal or kind is float:
        reason = out_of_bounds(value)
        return (path, reason) if reason else None
    if kind is dict:
        for key, item in value.items():
            found = first_out_of_bounds(item, f"{path}.{key}" if path else str(key), max_depth - 1)
            if found:
                return found
    elif kind is list:
        for i, item in enumerate(value):
            found = first_out_of_bounds(item, f"{path}[{i}]", max_depth - 1)
            if found:
                return found
    return None


def _short(value: Decimal | int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
